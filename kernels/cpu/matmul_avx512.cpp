// AVX-512 matmul range kernels: a streaming GEMV for decode (M <= 8) and a register-tiled GEMM for
// prefill. Built with -mavx512f/bw/vl/dq -mfma -mf16c; only called after CpuHasAvx512() said yes.
#include <immintrin.h>

#include <algorithm>

#include "kernels/cpu/avx512_util.h"
#include "kernels/cpu/variants.h"

namespace brickrt::kernels::internal {
namespace {

// Loads 16 consecutive weights (lanes outside `m` read nothing and are 0), widened exactly to F32:
// BF16 by zero-extend + shift (vpmovzxwd + vpslld 16), F16 by vcvtph2ps.
template <DType T>
__m512 LoadW(const void* base, int64_t idx, __mmask16 m);
template <>
[[gnu::always_inline]] inline __m512 LoadW<DType::kF32>(const void* base, int64_t idx, __mmask16 m) {
  return _mm512_maskz_loadu_ps(m, static_cast<const float*>(base) + idx);
}
template <>
[[gnu::always_inline]] inline __m512 LoadW<DType::kBF16>(const void* base, int64_t idx, __mmask16 m) {
  // maskz forms throughout: GCC 12's unmasked intrinsics trip -Wuninitialized (GCC bug 105593).
  const __m256i h = _mm256_maskz_loadu_epi16(m, static_cast<const uint16_t*>(base) + idx);
  return _mm512_castsi512_ps(_mm512_maskz_slli_epi32(m, _mm512_maskz_cvtepu16_epi32(m, h), 16));
}
template <>
[[gnu::always_inline]] inline __m512 LoadW<DType::kF16>(const void* base, int64_t idx, __mmask16 m) {
  return LoadF16(static_cast<const uint16_t*>(base) + idx, m);
}

template <DType T>
constexpr int64_t kElemBytes = T == DType::kF32 ? 4 : 2;

// ---------------------------------------------------------------------------------------------
// GEMV. Weights are streamed row by row: a tile of KT consecutive rows of W is read left to right
// over the column range, and y[M, n0:n1] (<= 8 rows, in L1/L2) is the accumulator between tiles.
// Measured on the Zen4 VM this targets: one row at a time (KT = 1) over whole rows is a single
// sequential stream and reaches the plain read bandwidth; several interleaved row streams (KT > 1)
// lose 30-50% in DRAM although they win in cache. So M <= 2 uses KT = 1 and the dispatcher splits
// K (not N) over threads; larger M, where y traffic ∝ M/KT would dominate, uses KT = 4-8.

template <DType T, int M, int NV, int KT>
[[gnu::always_inline]] inline void GemvTile(const float* x, int64_t K, const void* w, int64_t N, int64_t k0, int64_t c,
                     const __mmask16* mask, float* y, bool first, int64_t pf_row) {
  __m512 acc[M][NV];
#pragma GCC unroll 16
  for (int m = 0; m < M; ++m) {
#pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) {
      acc[m][v] = first ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(mask[v], y + m * N + c + 16 * v);
    }
  }
#pragma GCC unroll 16
  for (int kk = 0; kk < KT; ++kk) {
    const int64_t row = (k0 + kk) * N + c;
    if (pf_row >= 0) {
      // Software prefetch a few tiles ahead in the same columns: covers the first lines of each
      // row segment, before the hardware prefetcher has caught on.
      const char* p = static_cast<const char*>(w) + ((pf_row + kk) * N + c) * kElemBytes<T>;
      for (int64_t b = 0; b < 16 * NV * kElemBytes<T>; b += 64) _mm_prefetch(p + b, _MM_HINT_T0);
    }
    __m512 wv[NV];
#pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) wv[v] = LoadW<T>(w, row + 16 * v, mask[v]);
#pragma GCC unroll 16
    for (int m = 0; m < M; ++m) {
      const __m512 xb = _mm512_set1_ps(x[m * K + k0 + kk]);
#pragma GCC unroll 16
      for (int v = 0; v < NV; ++v) acc[m][v] = _mm512_fmadd_ps(xb, wv[v], acc[m][v]);
    }
  }
#pragma GCC unroll 16
  for (int m = 0; m < M; ++m) {
#pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) _mm512_mask_storeu_ps(y + m * N + c + 16 * v, mask[v], acc[m][v]);
  }
}

// y[0:M, n0:n1] = x[0:M, kb:ke] · W[kb:ke, n0:n1] (y row stride N).
template <DType T, int M, int NV, int KT>
void GemvRangeT(const float* x, int64_t K, const void* w, int64_t N, float* y, int64_t kb, int64_t ke, int64_t n0,
                int64_t n1) {
  constexpr int64_t kCols = 16 * NV;
  // Software prefetch ~8 KiB ahead of the stream (in whole tiles): enough to cover DRAM latency at
  // these rates, short enough not to evict what is being used.
  const int64_t tile_bytes = std::max<int64_t>(1, (n1 - n0) * KT * kElemBytes<T>);
  const int64_t pf_dist = KT * std::min<int64_t>(64, (8 * 1024 + tile_bytes - 1) / tile_bytes);
  int64_t k0 = kb;
  for (; k0 + KT <= ke; k0 += KT) {
    const int64_t pf_row = k0 + pf_dist + KT <= ke ? k0 + pf_dist : -1;
    for (int64_t c = n0; c < n1; c += kCols) {
      __mmask16 mask[NV];
#pragma GCC unroll 16
      for (int v = 0; v < NV; ++v) mask[v] = TailMask(c + 16 * v, n1);
      GemvTile<T, M, NV, KT>(x, K, w, N, k0, c, mask, y, k0 == kb, pf_row);
    }
  }
  for (; k0 < ke; ++k0) {  // K tail: one row at a time
    for (int64_t c = n0; c < n1; c += kCols) {
      __mmask16 mask[NV];
#pragma GCC unroll 16
      for (int v = 0; v < NV; ++v) mask[v] = TailMask(c + 16 * v, n1);
      GemvTile<T, M, NV, 1>(x, K, w, N, k0, c, mask, y, k0 == kb, -1);
    }
  }
}

// BF16 GEMV for M <= 2 without the widening shuffle: one 64-byte load holds 32 weights; the even
// columns are (raw << 16) and the odd ones (raw & 0xffff0000), both exact F32, so a weight costs half
// the vector ops of zero-extend + shift. They are accumulated into y in [16 even | 16 odd] order per
// 32-column block and put back in column order at the end. REQUIRES: (n1 − n0) % 32 == 0.
template <int M>
void GemvBf16PairsT(const float* x, int64_t K, const uint16_t* w, int64_t N, float* y, int64_t kb, int64_t ke,
                    int64_t n0, int64_t n1) {
  const int64_t row_bytes = std::max<int64_t>(1, (n1 - n0) * 2);
  const int64_t pf_dist = std::min<int64_t>(64, (8 * 1024 + row_bytes - 1) / row_bytes);  // rows, ~8 KiB
  for (int64_t k = kb; k < ke; ++k) {
    const bool first = k == kb;
    const uint16_t* wr = w + k * N;
    const uint16_t* pf = k + pf_dist < ke ? wr + pf_dist * N : nullptr;
    __m512 xb[M];
#pragma GCC unroll 2
    for (int m = 0; m < M; ++m) xb[m] = _mm512_set1_ps(x[m * K + k]);
    for (int64_t c = n0; c < n1; c += 32) {
      if (pf != nullptr) _mm_prefetch(reinterpret_cast<const char*>(pf + c), _MM_HINT_T0);
      __m512 we, wo;
      SplitBf16Pairs(_mm512_loadu_si512(wr + c), we, wo);
#pragma GCC unroll 2
      for (int m = 0; m < M; ++m) {
        float* ym = y + m * N + c;
        const __m512 ae = first ? _mm512_setzero_ps() : _mm512_loadu_ps(ym);
        const __m512 ao = first ? _mm512_setzero_ps() : _mm512_loadu_ps(ym + 16);
        _mm512_storeu_ps(ym, _mm512_fmadd_ps(xb[m], we, ae));
        _mm512_storeu_ps(ym + 16, _mm512_fmadd_ps(xb[m], wo, ao));
      }
    }
  }
  // Column order: y[c + 2i] = even[i], y[c + 2i + 1] = odd[i] (permutex2var: 0-15 even, 16-31 odd).
  alignas(64) static constexpr int32_t kLo[16] = {0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23};
  alignas(64) static constexpr int32_t kHi[16] = {8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
  const __m512i lo = _mm512_load_si512(kLo), hi = _mm512_load_si512(kHi);
  for (int m = 0; m < M; ++m) {
    for (int64_t c = n0; c < n1; c += 32) {
      float* ym = y + m * N + c;
      const __m512 e = _mm512_loadu_ps(ym), o = _mm512_loadu_ps(ym + 16);
      _mm512_storeu_ps(ym, _mm512_permutex2var_ps(e, lo, o));
      _mm512_storeu_ps(ym + 16, _mm512_permutex2var_ps(e, hi, o));
    }
  }
}

// Register budget (32 zmm): M·NV accumulators + NV weights + 1 broadcast.
template <DType T>
void GemvRangeDtype(const float* x, int64_t M, int64_t K, const void* w, int64_t N, float* y, int64_t kb,
                    int64_t ke, int64_t n0, int64_t n1) {
  if constexpr (T == DType::kBF16) {
    if (M <= 2) {
      // Whole 32-column blocks by the pair kernel, the rest (< 32 columns) by the generic tile.
      const int64_t mid = n0 + (n1 - n0) / 32 * 32;
      const auto* w16 = static_cast<const uint16_t*>(w);
      if (M == 1) GemvBf16PairsT<1>(x, K, w16, N, y, kb, ke, n0, mid);
      if (M == 2) GemvBf16PairsT<2>(x, K, w16, N, y, kb, ke, n0, mid);
      if (mid < n1) {
        if (M == 1) GemvRangeT<T, 1, 2, 1>(x, K, w, N, y, kb, ke, mid, n1);
        if (M == 2) GemvRangeT<T, 2, 2, 1>(x, K, w, N, y, kb, ke, mid, n1);
      }
      return;
    }
  }
  switch (M) {
    case 1: return GemvRangeT<T, 1, 4, 1>(x, K, w, N, y, kb, ke, n0, n1);
    case 2: return GemvRangeT<T, 2, 4, 1>(x, K, w, N, y, kb, ke, n0, n1);
    case 3: return GemvRangeT<T, 3, 4, 4>(x, K, w, N, y, kb, ke, n0, n1);
    case 4: return GemvRangeT<T, 4, 4, 4>(x, K, w, N, y, kb, ke, n0, n1);
    case 5: return GemvRangeT<T, 5, 2, 8>(x, K, w, N, y, kb, ke, n0, n1);
    case 6: return GemvRangeT<T, 6, 2, 8>(x, K, w, N, y, kb, ke, n0, n1);
    case 7: return GemvRangeT<T, 7, 2, 8>(x, K, w, N, y, kb, ke, n0, n1);
    default: return GemvRangeT<T, 8, 2, 8>(x, K, w, N, y, kb, ke, n0, n1);
  }
}

// ---------------------------------------------------------------------------------------------
// GEMM. Micro-kernel: MR (<= 6) rows × 64 columns (4 zmm) = 24 accumulators; per k it loads and
// widens 4 weight vectors once and reuses them for MR broadcast rows. K is blocked by kKc so the
// W block [kKc, 64] (<= 64 KiB) stays in L2 while every row tile of the task passes over it.
constexpr int kMr = 6;
constexpr int64_t kKc = 256;

template <DType T, int MR>
[[gnu::always_inline]] inline void GemmMicro(const float* x, int64_t K, const void* w, int64_t N, int64_t k0,
                                             int64_t k1, int64_t c, const __mmask16* mask, float* y, bool first) {
  MicroTile64<MR>(x, K, k0, k1, y + c, N, mask, first, [=](int64_t k, __m512(&wv)[4]) [[gnu::always_inline]] {
#pragma GCC unroll 4
    for (int v = 0; v < 4; ++v) wv[v] = LoadW<T>(w, k * N + c + 16 * v, mask[v]);
  });
}

template <DType T>
void GemmRangeDtype(const float* x, int64_t K, const void* w, int64_t N, float* y, int64_t m0, int64_t m1,
                    int64_t n0, int64_t n1) {
  for (int64_t c = n0; c < n1; c += 64) {
    __mmask16 mask[4];
#pragma GCC unroll 16
    for (int v = 0; v < 4; ++v) mask[v] = TailMask(c + 16 * v, n1);
    for (int64_t k0 = 0; k0 < K; k0 += kKc) {
      const int64_t k1 = std::min(K, k0 + kKc);
      for (int64_t m = m0; m < m1; m += kMr) {
        const float* xm = x + m * K;
        float* ym = y + m * N;
        const bool first = k0 == 0;
        switch (std::min<int64_t>(kMr, m1 - m)) {
          case 1: GemmMicro<T, 1>(xm, K, w, N, k0, k1, c, mask, ym, first); break;
          case 2: GemmMicro<T, 2>(xm, K, w, N, k0, k1, c, mask, ym, first); break;
          case 3: GemmMicro<T, 3>(xm, K, w, N, k0, k1, c, mask, ym, first); break;
          case 4: GemmMicro<T, 4>(xm, K, w, N, k0, k1, c, mask, ym, first); break;
          case 5: GemmMicro<T, 5>(xm, K, w, N, k0, k1, c, mask, ym, first); break;
          default: GemmMicro<T, 6>(xm, K, w, N, k0, k1, c, mask, ym, first); break;
        }
      }
    }
  }
}

}  // namespace

void GemvAvx512Range(const float* x, int64_t M, int64_t K, const void* w, DType wt, int64_t N, float* y, int64_t kb,
                     int64_t ke, int64_t n0, int64_t n1) {
  switch (wt) {
    case DType::kF32: return GemvRangeDtype<DType::kF32>(x, M, K, w, N, y, kb, ke, n0, n1);
    case DType::kF16: return GemvRangeDtype<DType::kF16>(x, M, K, w, N, y, kb, ke, n0, n1);
    case DType::kBF16: return GemvRangeDtype<DType::kBF16>(x, M, K, w, N, y, kb, ke, n0, n1);
  }
}

void GemmAvx512Range(const float* x, int64_t, int64_t K, const void* w, DType wt, int64_t N, float* y, int64_t m0,
                     int64_t m1, int64_t n0, int64_t n1) {
  switch (wt) {
    case DType::kF32: return GemmRangeDtype<DType::kF32>(x, K, w, N, y, m0, m1, n0, n1);
    case DType::kF16: return GemmRangeDtype<DType::kF16>(x, K, w, N, y, m0, m1, n0, n1);
    case DType::kBF16: return GemmRangeDtype<DType::kBF16>(x, K, w, N, y, m0, m1, n0, n1);
  }
}

}  // namespace brickrt::kernels::internal
