// How a fuzz input becomes the frames of one wire message, shared by the fuzz target
// (tests/fuzz/wire_fuzz.cpp) and the test that writes its seed corpus (tests/node/wire_test.cpp).
// Byte 0: bits 0-2 give an offset that misaligns every frame (ZeroMQ frames may start anywhere);
// then frames, each a little-endian uint32 length + that many bytes (a length past the end takes
// what is left); at most kMaxFuzzFrames frames.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace brickrt::fuzz {

inline constexpr size_t kMaxFuzzFrames = 12;  // past WireLimits::max_frames (8), so that check is reached

// Each frame lives in its own allocation that ends exactly where the frame ends, so AddressSanitizer
// sees any read past a frame.
struct FuzzFrames {
  std::vector<std::unique_ptr<char[]>> storage;
  std::vector<std::string_view> frames;
};

inline FuzzFrames SplitFuzzInput(const uint8_t* data, size_t size) {
  FuzzFrames out;
  if (size == 0) return out;
  const size_t misalign = data[0] & 7;
  size_t at = 1;
  while (at < size && out.frames.size() < kMaxFuzzFrames) {
    uint32_t len = 0;
    const size_t have = size - at < 4 ? size - at : 4;
    std::memcpy(&len, data + at, have);  // little-endian hosts only (static_assert in node/wire.h)
    at += have;
    const size_t n = len < size - at ? len : size - at;
    out.storage.push_back(std::make_unique<char[]>(misalign + n));
    char* frame = out.storage.back().get() + misalign;
    if (n > 0) std::memcpy(frame, data + at, n);
    out.frames.emplace_back(frame, n);
    at += n;
  }
  return out;
}

// The inverse, for writing seeds.
inline std::string JoinFuzzInput(const std::vector<std::string>& frames, uint8_t misalign) {
  std::string out(1, static_cast<char>(misalign & 7));
  for (const std::string& f : frames) {
    const auto len = static_cast<uint32_t>(f.size());
    out.append(reinterpret_cast<const char*>(&len), 4);
    out += f;
  }
  return out;
}

}  // namespace brickrt::fuzz
