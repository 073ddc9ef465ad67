// A received frame as FlatBuffers reads it: 8-byte aligned. ZeroMQ hands out receive buffers at any
// offset and FlatBuffers reads its 64-bit fields in place, so a frame that is not aligned is copied
// (once, into storage this object keeps).
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

namespace brickrt {

class AlignedFrame {
 public:
  // The frame's bytes at an 8-byte aligned address, valid while this object lives and is not reused.
  const uint8_t* Align(std::string_view frame) {
    const auto* data = reinterpret_cast<const uint8_t*>(frame.data());
    if (reinterpret_cast<uintptr_t>(data) % alignof(uint64_t) == 0) return data;
    copy_.resize((frame.size() + sizeof(uint64_t) - 1) / sizeof(uint64_t));
    std::memcpy(copy_.data(), frame.data(), frame.size());
    return reinterpret_cast<const uint8_t*>(copy_.data());
  }

 private:
  std::vector<uint64_t> copy_;
};

}  // namespace brickrt
