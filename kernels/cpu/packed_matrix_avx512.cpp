// AVX-512 kernels over packed weight panels (kernels/cpu/packed_matrix.h): the decode GEMV and the
// prefill GEMM share one micro-kernel, MR rows × 64 columns with 4·MR zmm accumulators held over a K
// range. Built with -mavx512f/bw/vl/dq -mfma -mf16c; only called after CpuHasAvx512() said yes.
#include <immintrin.h>

#include <algorithm>

#include "kernels/cpu/avx512_util.h"
#include "kernels/cpu/packed_matrix.h"
#include "kernels/cpu/variants.h"

namespace brickrt::kernels::internal {
namespace {

template <DType T>
constexpr int64_t kRowBytes = kPanelCols*(T == DType::kF32 ? 4 : 2);

// No software prefetch: every thread reads one sequential stream, which the hardware prefetchers
// follow; on the Zen4 VM prefetching 0.5-8 KiB ahead measured 3-20% slower in DRAM (M = 1, BF16).

// Row k of a panel widened exactly to F32: columns 16v .. 16v+15 in w[v]. Rows are 64-byte aligned.
template <DType T>
[[gnu::always_inline]] inline void LoadRow(const uint8_t* row, __m512 (&w)[4]);
template <>
[[gnu::always_inline]] inline void LoadRow<DType::kF32>(const uint8_t* row, __m512 (&w)[4]) {
#pragma GCC unroll 4
  for (int v = 0; v < 4; ++v) w[v] = _mm512_load_ps(row + 64 * v);
}
template <>
[[gnu::always_inline]] inline void LoadRow<DType::kF16>(const uint8_t* row, __m512 (&w)[4]) {
#pragma GCC unroll 4
  for (int v = 0; v < 4; ++v) w[v] = LoadF16(row + 32 * v, 0xffff);
}
template <>
[[gnu::always_inline]] inline void LoadRow<DType::kBF16>(const uint8_t* row, __m512 (&w)[4]) {
  // Each 64-byte half holds [c0, c16, c1, c17, ...] (PanelSlot): the even elements are columns 0-15
  // and the odd ones columns 16-31.
#pragma GCC unroll 2
  for (int h = 0; h < 2; ++h) SplitBf16Pairs(_mm512_load_si512(row + 64 * h), w[2 * h], w[2 * h + 1]);
}

// y[0:MR, 0:64] (+)= x[0:MR, k0:k1] · P[k0:k1, 0:64] for one panel P; x row stride ldx, y row stride
// ldy, columns outside `mask` neither read nor written. `first`: start from 0 instead of y.
template <DType T, int MR>
[[gnu::always_inline]] inline void Micro(const float* x, int64_t ldx, const uint8_t* panel, int64_t k0, int64_t k1,
                                         float* y, int64_t ldy, const __mmask16* mask, bool first) {
  MicroTile64<MR>(x, ldx, k0, k1, y, ldy, mask, first, [panel](int64_t k, __m512(&w)[4]) [[gnu::always_inline]] {
    LoadRow<T>(panel + k * kRowBytes<T>, w);
  });
}

// Micro for a run-time row count 1..kMaxMr.
constexpr int kMaxMr = 6;
template <DType T>
void MicroRows(int rows, const float* x, int64_t ldx, const uint8_t* panel, int64_t k0, int64_t k1, float* y,
               int64_t ldy, const __mmask16* mask, bool first) {
  switch (rows) {
    case 1:
      return Micro<T, 1>(x, ldx, panel, k0, k1, y, ldy, mask, first);
    case 2:
      return Micro<T, 2>(x, ldx, panel, k0, k1, y, ldy, mask, first);
    case 3:
      return Micro<T, 3>(x, ldx, panel, k0, k1, y, ldy, mask, first);
    case 4:
      return Micro<T, 4>(x, ldx, panel, k0, k1, y, ldy, mask, first);
    case 5:
      return Micro<T, 5>(x, ldx, panel, k0, k1, y, ldy, mask, first);
    default:
      return Micro<T, 6>(x, ldx, panel, k0, k1, y, ldy, mask, first);
  }
}

// GEMM K block: the panel block [kGemmKc, 64] (32 KiB BF16, 64 KiB F32) stays in L1/L2 while every
// row tile of the task passes over it.
constexpr int64_t kGemmKc = 256;
// GEMV with 7-8 rows (4·M accumulators would not fit in 32 registers): two row groups over K blocks
// of this many bytes of panel; the first group streams the block from DRAM, the second re-reads it
// from L2. M = 8 BF16 is FMA-bound (~12.8 GB/s in L2); on the Zen4 VM 64 KiB blocks reached ~12 GB/s
// from DRAM, 16 KiB ~9.5 (the DRAM stream stalls more often), 2 KiB-16 KiB software prefetch did not
// help, and 32-column halves of all 8 rows at once ~10.7 (a strided DRAM stream).
constexpr int64_t kGemvSplitBlockBytes = 64 * 1024;

template <DType T>
void RangeT(const float* x, int64_t K, const void* panels, int64_t N, float* y, int64_t m0, int64_t m1, int64_t p0,
            int64_t p1) {
  const int64_t rows = m1 - m0;
  const auto* base = static_cast<const uint8_t*>(panels);
  const float* xm = x + m0 * K;
  for (int64_t p = p0; p < p1; ++p) {
    const uint8_t* panel = base + p * K * kRowBytes<T>;
    const int64_t n0 = p * kPanelCols;
    __mmask16 mask[4];
#pragma GCC unroll 4
    for (int v = 0; v < 4; ++v) mask[v] = TailMask(n0 + 16 * v, N);
    float* ym = y + m0 * N + n0;
    if (rows <= kMaxMr) {
      // GEMV: one pass over the whole panel, y written once.
      MicroRows<T>(static_cast<int>(rows), xm, K, panel, 0, K, ym, N, mask, true);
      continue;
    }
    const bool gemv = rows <= 8;
    const int64_t kc = gemv ? kGemvSplitBlockBytes / kRowBytes<T> : kGemmKc;
    const int64_t mr = gemv ? 4 : kMaxMr;
    for (int64_t k0 = 0; k0 < K; k0 += kc) {
      const int64_t k1 = std::min(K, k0 + kc);
      for (int64_t m = 0; m < rows; m += mr) {
        const int r = static_cast<int>(std::min(mr, rows - m));
        MicroRows<T>(r, xm + m * K, K, panel, k0, k1, ym + m * N, N, mask, k0 == 0);
      }
    }
  }
}

}  // namespace

void PackedRangeAvx512(const float* x, int64_t K, const void* panels, DType dt, int64_t N, float* y, int64_t m0,
                       int64_t m1, int64_t p0, int64_t p1) {
  switch (dt) {
    case DType::kF32:
      return RangeT<DType::kF32>(x, K, panels, N, y, m0, m1, p0, p1);
    case DType::kF16:
      return RangeT<DType::kF16>(x, K, panels, N, y, m0, m1, p0, p1);
    case DType::kBF16:
      return RangeT<DType::kBF16>(x, K, panels, N, y, m0, m1, p0, p1);
  }
}

}  // namespace brickrt::kernels::internal
