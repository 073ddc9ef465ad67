// Rng: xoshiro256** seeded through splitmix64 — small, fast and specified bit for bit, so sampling
// and random test models give the same numbers on every platform (unlike <random>'s distributions).
#pragma once

#include <cstdint>

namespace brickrt {

// One splitmix64 step: advances *state and returns a well-mixed 64-bit value.
inline uint64_t SplitMix64(uint64_t* state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

class Rng {
 public:
  explicit Rng(uint64_t seed) {
    for (uint64_t& w : s_) w = SplitMix64(&seed);
  }

  uint64_t Next() {
    const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = Rotl(s_[3], 45);
    return result;
  }

  // Uniform in [0, 1) with 53 random bits.
  double Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }

  // Approximately N(0, 1): four 16-bit uniforms summed (Irwin–Hall, variance 4·(2^32−1)/12), centred
  // and scaled. Exact in float: the sum is an integer below 2^18 and the scale is one rounding.
  float Normal() {
    const uint64_t r = Next();
    const int32_t sum = static_cast<int32_t>((r & 0xffff) + ((r >> 16) & 0xffff) + ((r >> 32) & 0xffff) + (r >> 48));
    constexpr float kScale = 1.7320508075688772f / 65535.0f;  // sqrt(3) / 65535 -> unit variance
    return static_cast<float>(sum - 131070) * kScale;
  }

 private:
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

}  // namespace brickrt
