// SHA-256 (FIPS 180-4), written here rather than taken from OpenSSL so that core/ has no crypto
// dependency: brick payload digests, registry blob keys and cache keys all come from this.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace brickrt {

// Incremental hasher: Update() any number of times with any chunking, then Finish() once.
// The digest does not depend on how the input was split. After Finish() the object is spent;
// REQUIRES: no Update()/Finish() after Finish() (construct a new one instead).
class Sha256 {
 public:
  Sha256();
  void Update(const void* data, size_t n);
  std::array<uint8_t, 32> Finish();

 private:
  void Compress(const uint8_t* blocks, size_t n_blocks);  // n_blocks 64-byte blocks into state_

  std::array<uint32_t, 8> state_;
  std::array<uint8_t, 64> buffer_{};  // the partial block not yet compressed
  size_t buffered_ = 0;
  uint64_t total_bytes_ = 0;
  bool finished_ = false;
};

// Whether Sha256 uses the CPU's SHA instructions (x86 SHA-NI, chosen at run time); the portable
// code is used otherwise. Both give the same digests.
bool Sha256Accelerated();
// Tests only: force the portable implementation (true) or restore the run-time choice (false), so
// both paths are checked on machines that have the instructions. Not thread-safe against hashing.
void Sha256ForcePortableForTesting(bool force);

// Lowercase hex of bytes[0..n).
std::string ToHex(const uint8_t* bytes, size_t n);
// One-shot: lowercase 64-character hex digest of data[0..n).
std::string Sha256Hex(const void* data, size_t n);

}  // namespace brickrt
