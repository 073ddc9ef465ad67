// Internal AVX-512 helpers shared by the *_avx512.cpp kernels. Include only from files built with the
// ISA flags of kernels/CMakeLists.txt (AVX-512 F/BW/VL/DQ, FMA, F16C), never from portable code.
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace brickrt::kernels::internal {

// Mask of the lanes of the 16-float vector starting at column c that lie below `end`.
[[gnu::always_inline]] inline __mmask16 TailMask(int64_t c, int64_t end) {
  const int64_t rem = end - c;
  if (rem >= 16) return 0xffff;
  if (rem <= 0) return 0;
  return static_cast<__mmask16>((1u << rem) - 1u);
}

// 16 F16 values widened exactly to F32 (vcvtph2ps); lanes outside `m` read nothing and are 0.
// maskz forms: GCC 12's unmasked 256-bit loads/converts trip -Wuninitialized (GCC bug 105593).
[[gnu::always_inline]] inline __m512 LoadF16(const void* p, __mmask16 m) {
  return _mm512_maskz_cvtph_ps(m, _mm256_maskz_loadu_epi16(m, p));
}

// 32 BF16 values in one zmm, widened exactly to F32 without a shuffle: the even elements shifted up
// (`even`) and the odd ones with the low half cleared (`odd`).
[[gnu::always_inline]] inline void SplitBf16Pairs(__m512i raw, __m512& even, __m512& odd) {
  even = _mm512_castsi512_ps(_mm512_maskz_slli_epi32(0xffff, raw, 16));
  odd = _mm512_castsi512_ps(_mm512_and_si512(raw, _mm512_set1_epi32(static_cast<int>(0xffff0000u))));
}

// Register-tiled micro-kernel: y[0:MR, 0:64] (+)= x[0:MR, k0:k1] · W[k0:k1, 0:64] with 4·MR zmm
// accumulators held over the K range. load(k, w) widens row k of W's 64 columns into w[0..3] (the
// caller's weight layout). x F32 row stride ldx, y F32 row stride ldy; columns outside `mask`
// (4 lanes masks) are neither read nor written. `first`: start from 0 instead of y.
template <int MR, typename LoadRowFn>
[[gnu::always_inline]] inline void MicroTile64(const float* x, int64_t ldx, int64_t k0, int64_t k1, float* y,
                                               int64_t ldy, const __mmask16* mask, bool first, LoadRowFn&& load) {
  __m512 acc[MR][4];
#pragma GCC unroll 8
  for (int m = 0; m < MR; ++m) {
#pragma GCC unroll 4
    for (int v = 0; v < 4; ++v) {
      acc[m][v] = first ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(mask[v], y + m * ldy + 16 * v);
    }
  }
  for (int64_t k = k0; k < k1; ++k) {
    __m512 w[4];
    load(k, w);
#pragma GCC unroll 8
    for (int m = 0; m < MR; ++m) {
      const __m512 xb = _mm512_set1_ps(x[m * ldx + k]);
#pragma GCC unroll 4
      for (int v = 0; v < 4; ++v) acc[m][v] = _mm512_fmadd_ps(xb, w[v], acc[m][v]);
    }
  }
#pragma GCC unroll 8
  for (int m = 0; m < MR; ++m) {
#pragma GCC unroll 4
    for (int v = 0; v < 4; ++v) _mm512_mask_storeu_ps(y + m * ldy + 16 * v, mask[v], acc[m][v]);
  }
}

}  // namespace brickrt::kernels::internal
