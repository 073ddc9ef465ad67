// Matmul dispatch (AVX-512 or portable) and thread splitting, plus the portable range kernels:
// GEMV for decode (M <= 8) and a simple blocked GEMM, written so GCC can vectorize them for any x86-64.
#include <algorithm>
#include <cstring>
#include <vector>

#include "core/status.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/variants.h"

namespace brickrt::kernels {
namespace internal {
namespace {

// Column split unit: whole cache lines of weights for every dtype and whole 4-zmm column blocks.
constexpr int64_t kColUnit = 64;
// The GEMV splits K (whole rows: one sequential stream per thread, measured ~1.4x better in DRAM
// than interleaved column halves) when every thread gets at least this many rows, else N.
constexpr int64_t kMinRowsPerThread = 32;
// GEMM task tile: rows × columns per task (a W block [K, kGemmCols] is reused by kGemmRows rows).
constexpr int64_t kGemmRows = 96;
constexpr int64_t kGemmCols = 64;

using GemvRangeFn = void (*)(const float*, int64_t, int64_t, const void*, DType, int64_t, float*, int64_t, int64_t,
                             int64_t, int64_t);
using GemmRangeFn = void (*)(const float*, int64_t, int64_t, const void*, DType, int64_t, float*, int64_t, int64_t,
                             int64_t, int64_t);

void MatmulWith(GemvRangeFn gemv, GemmRangeFn gemm, const float* x, int64_t M, int64_t K, const void* w, DType wt,
                int64_t N, float* y, ThreadPool* pool) {
  BRICK_ASSERT(M >= 0 && K >= 0 && N >= 0, "Matmul: negative shape");
  if (M == 0 || N == 0) return;
  if (K == 0) {
    std::memset(y, 0, static_cast<size_t>(M * N) * sizeof(float));
    return;
  }
  const int64_t bytes = K * N * static_cast<int64_t>(DTypeSize(wt));
  const int n_threads = (pool == nullptr || bytes < kMinParallelBytes) ? 1 : pool->size();
  if (M <= kGemvMaxRows) {
    if (n_threads <= 1) {
      gemv(x, M, K, w, wt, N, y, 0, K, 0, N);
      return;
    }
    if (K >= kMinRowsPerThread * n_threads) {
      // K split: task t sums rows [k_t, k_t+1) into its own [M, N] slice (task 0 into y, the others
      // into caller-thread scratch), then the caller adds the slices. Scratch is grown, never shrunk,
      // so steady-state decode does not allocate.
      thread_local std::vector<float> scratch;
      const size_t need = static_cast<size_t>((n_threads - 1) * M * N);
      if (scratch.size() < need) scratch.resize(need);
      float* partial = scratch.data();
      pool->ParallelFor(n_threads, [&](int64_t t, int) {
        const int64_t kb = K * t / n_threads, ke = K * (t + 1) / n_threads;
        gemv(x, M, K, w, wt, N, t == 0 ? y : partial + (t - 1) * M * N, kb, ke, 0, N);
      });
      for (int t = 1; t < n_threads; ++t) {
        const float* p = partial + (t - 1) * M * N;
        for (int64_t i = 0; i < M * N; ++i) y[i] += p[i];
      }
      return;
    }
    // N split: one contiguous column range per thread, whole 64-column units.
    const int64_t units = (N + kColUnit - 1) / kColUnit;
    const int64_t tasks = std::min<int64_t>(n_threads, units);
    pool->ParallelFor(tasks, [&](int64_t t, int) {
      const int64_t n0 = std::min(N, (units * t / tasks) * kColUnit);
      const int64_t n1 = std::min(N, (units * (t + 1) / tasks) * kColUnit);
      if (n0 < n1) gemv(x, M, K, w, wt, N, y, 0, K, n0, n1);
    });
    return;
  }
  const int64_t row_tiles = (M + kGemmRows - 1) / kGemmRows;
  const int64_t col_tiles = (N + kGemmCols - 1) / kGemmCols;
  auto run_tile = [&](int64_t t, int) {
    // Column-major task order: consecutive tasks share a W column block while it is still in cache.
    const int64_t ct = t / row_tiles, rt = t % row_tiles;
    gemm(x, M, K, w, wt, N, y, rt * kGemmRows, std::min(M, (rt + 1) * kGemmRows), ct * kGemmCols,
         std::min(N, (ct + 1) * kGemmCols));
  };
  if (n_threads <= 1) {
    for (int64_t t = 0; t < row_tiles * col_tiles; ++t) run_tile(t, 0);
  } else {
    pool->ParallelFor(row_tiles * col_tiles, run_tile);
  }
}

// Widens w[idx .. idx+n) to F32. Written per dtype so the F32 and BF16 loops vectorize.
inline void WidenRow(const void* w, DType wt, int64_t idx, int64_t n, float* dst) {
  switch (wt) {
    case DType::kF32:
      std::memcpy(dst, static_cast<const float*>(w) + idx, static_cast<size_t>(n) * sizeof(float));
      return;
    case DType::kBF16: {
      const uint16_t* s = static_cast<const uint16_t*>(w) + idx;
      for (int64_t i = 0; i < n; ++i) dst[i] = Bf16ToF32(s[i]);
      return;
    }
    case DType::kF16: {
      const uint16_t* s = static_cast<const uint16_t*>(w) + idx;
      for (int64_t i = 0; i < n; ++i) dst[i] = F16ToF32(s[i]);
      return;
    }
  }
}

// Portable block: rows [m0, m1) (at most kRowBlock of them) × columns [n0, n0+nb), nb <= kColBlock.
constexpr int64_t kRowBlock = 4;
constexpr int64_t kColBlock = 128;

void PortableBlock(const float* x, int64_t m0, int64_t m1, int64_t K, const void* w, DType wt, int64_t N, float* y,
                   int64_t kb, int64_t ke, int64_t n0, int64_t nb) {
  float acc[kRowBlock][kColBlock] = {};
  float wrow[kColBlock];
  const int64_t rows = m1 - m0;
  for (int64_t k = kb; k < ke; ++k) {
    WidenRow(w, wt, k * N + n0, nb, wrow);
    for (int64_t r = 0; r < rows; ++r) {
      const float xv = x[(m0 + r) * K + k];
      float* a = acc[r];
      for (int64_t j = 0; j < nb; ++j) a[j] += xv * wrow[j];
    }
  }
  for (int64_t r = 0; r < rows; ++r) std::memcpy(y + (m0 + r) * N + n0, acc[r], static_cast<size_t>(nb) * 4);
}

}  // namespace

void GemmPortableRange(const float* x, int64_t, int64_t K, const void* w, DType wt, int64_t N, float* y, int64_t m0,
                       int64_t m1, int64_t n0, int64_t n1) {
  for (int64_t c = n0; c < n1; c += kColBlock) {
    for (int64_t m = m0; m < m1; m += kRowBlock) {
      PortableBlock(x, m, std::min(m1, m + kRowBlock), K, w, wt, N, y, 0, K, c, std::min(kColBlock, n1 - c));
    }
  }
}

void GemvPortableRange(const float* x, int64_t M, int64_t K, const void* w, DType wt, int64_t N, float* y, int64_t kb,
                       int64_t ke, int64_t n0, int64_t n1) {
  for (int64_t c = n0; c < n1; c += kColBlock) {
    for (int64_t m = 0; m < M; m += kRowBlock) {
      PortableBlock(x, m, std::min(M, m + kRowBlock), K, w, wt, N, y, kb, ke, c, std::min(kColBlock, n1 - c));
    }
  }
}

void MatmulPortable(const float* x, int64_t M, int64_t K, const void* w, DType wt, int64_t N, float* y,
                    ThreadPool* pool) {
  MatmulWith(GemvPortableRange, GemmPortableRange, x, M, K, w, wt, N, y, pool);
}

void MatmulAvx512(const float* x, int64_t M, int64_t K, const void* w, DType wt, int64_t N, float* y,
                  ThreadPool* pool) {
  MatmulWith(GemvAvx512Range, GemmAvx512Range, x, M, K, w, wt, N, y, pool);
}

}  // namespace internal

void Matmul(const float* x, int64_t M, int64_t K, const void* w, DType wt, int64_t N, float* y, ThreadPool* pool) {
  if (internal::CpuHasAvx512()) {
    internal::MatmulAvx512(x, M, K, w, wt, N, y, pool);
  } else {
    internal::MatmulPortable(x, M, K, w, wt, N, y, pool);
  }
}

}  // namespace brickrt::kernels
