// How a fuzz input becomes one serving frame (schemas/serve.fbs), shared by the fuzz target
// (tests/fuzz/serve_fuzz.cpp) and the test that writes its seed corpus (tests/node/serve_wire_test.cpp).
// Byte 0: bits 0-2 give an offset that misaligns the frame (ZeroMQ frames may start anywhere), bit 3
// selects small limits (so every limit check is reached by short inputs); the rest is the frame.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "node/serve_wire.h"

namespace brickrt::fuzz {

// Limits small enough that a fuzzer reaches each of them with a frame of a few hundred bytes.
inline serve::ServeLimits SmallServeLimits() {
  serve::ServeLimits l;
  l.max_frame_bytes = 512;
  l.max_prompt_tokens = 8;
  l.max_new_tokens = 64;
  l.max_name_bytes = 16;
  l.max_running = 4;
  l.max_message_bytes = 32;
  return l;
}

// The frame lives in its own allocation that ends exactly where the frame ends, so AddressSanitizer
// sees any read past it.
struct ServeFuzzInput {
  std::unique_ptr<char[]> storage;
  std::string_view frame;
  serve::ServeLimits limits;
};

inline ServeFuzzInput SplitServeFuzzInput(const uint8_t* data, size_t size) {
  ServeFuzzInput out;
  if (size == 0) return out;
  const size_t misalign = data[0] & 7;
  if (data[0] & 8) out.limits = SmallServeLimits();
  const size_t n = size - 1;
  out.storage = std::make_unique<char[]>(misalign + n);
  char* frame = out.storage.get() + misalign;
  if (n > 0) std::memcpy(frame, data + 1, n);
  out.frame = std::string_view(frame, n);
  return out;
}

// The inverse, for writing seeds.
inline std::string JoinServeFuzzInput(const std::string& frame, uint8_t misalign, bool small_limits) {
  return std::string(1, static_cast<char>((misalign & 7) | (small_limits ? 8 : 0))) + frame;
}

}  // namespace brickrt::fuzz
