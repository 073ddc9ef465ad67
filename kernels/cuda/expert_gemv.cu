// Grouped GEMV over gathered (token, expert) pairs: split-K partial sums with weights widened in
// registers, then a fixed-order sum of the splits (deterministic, no atomics).
#include <cstdint>

#include "kernels/cuda/cuda_util.cuh"
#include "kernels/cuda/expert_gemv.h"

namespace brickrt::cuda {
namespace {

using internal::kGemvMaxThreads;
using internal::kGemvPairsPerBlock;
constexpr int kPairs = static_cast<int>(kGemvPairsPerBlock);
constexpr int kUnroll = 8;   // weight rows loaded before their FMAs: 8 × 16 B in flight per thread
constexpr int kKTile = 256;  // rows of x staged in shared memory at a time
constexpr int kReduceThreads = 256;
constexpr int64_t kMaxGridYZ = 65535;

// Columns per thread: one 16-byte load of a weight row.
template <typename T>
constexpr int kVec = 16 / static_cast<int>(sizeof(T));

__device__ inline float Widen(float v) { return v; }
__device__ inline float Widen(__half v) { return __half2float(v); }
__device__ inline float Widen(__nv_bfloat16 v) { return __bfloat162float(v); }

// acc[j][c] += Σ_k xs[j][k]·W[k, c] over `rows` rows starting at w (this thread's columns), with one
// 16-byte load per row: kUnroll rows' loads are issued before their FMAs. REQUIRES: w 16-byte aligned,
// N·sizeof(T) a multiple of 16 (so every row of the thread's columns is aligned and inside N).
template <typename T>
__device__ __forceinline__ void RowsVector(const T* w, int64_t N, int rows, const float (*xs)[kKTile],
                                           float (&acc)[kPairs][kVec<T>]) {
  constexpr int V = kVec<T>;
  int k = 0;
  for (; k + kUnroll <= rows; k += kUnroll) {
    uint4 raw[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) raw[u] = __ldg(reinterpret_cast<const uint4*>(w + (k + u) * N));
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const T* wv = reinterpret_cast<const T*>(&raw[u]);
#pragma unroll
      for (int c = 0; c < V; ++c) {
        const float wc = Widen(wv[c]);
#pragma unroll
        for (int j = 0; j < kPairs; ++j) acc[j][c] = fmaf(xs[j][k + u], wc, acc[j][c]);
      }
    }
  }
  for (; k < rows; ++k) {
    const uint4 raw = __ldg(reinterpret_cast<const uint4*>(w + k * N));
    const T* wv = reinterpret_cast<const T*>(&raw);
#pragma unroll
    for (int c = 0; c < V; ++c) {
      const float wc = Widen(wv[c]);
#pragma unroll
      for (int j = 0; j < kPairs; ++j) acc[j][c] = fmaf(xs[j][k], wc, acc[j][c]);
    }
  }
}

// The same with element loads, for unaligned weights or N·sizeof(T) not a multiple of 16: only the
// thread's `valid` columns (< V at the end of N) are read.
template <typename T>
__device__ __forceinline__ void RowsScalar(const T* w, int64_t N, int rows, int valid, const float (*xs)[kKTile],
                                           float (&acc)[kPairs][kVec<T>]) {
  constexpr int V = kVec<T>;
  for (int k = 0; k < rows; ++k) {
    const T* wr = w + k * N;
#pragma unroll
    for (int c = 0; c < V; ++c) {
      const float wc = c < valid ? Widen(__ldg(wr + c)) : 0.0f;
#pragma unroll
      for (int j = 0; j < kPairs; ++j) acc[j][c] = fmaf(xs[j][k], wc, acc[j][c]);
    }
  }
}

// Grid (column tiles, K splits, pair chunks); block: threads own kVec<T> consecutive columns each. A
// block takes its chunk's pairs run by run (consecutive pairs with one expert) and writes each pair's
// partial sum over its K range [split·rows_per_split, +rows_per_split) to
// out[p·ldo + split·split_stride + column] (y itself when there is one split, else scratch).
template <typename T>
__global__ void __launch_bounds__(kGemvMaxThreads)
    ExpertGemvKernel(const float* x, int64_t ldx, int64_t P, int64_t K, const int32_t* offsets, int64_t E,
                     const void* const* weights, int64_t N, int64_t rows_per_split, int64_t chunks, float* out,
                     int64_t ldo, int64_t split_stride) {
  constexpr int V = kVec<T>;
  __shared__ float xs[kPairs][kKTile];
  __shared__ int64_t expert[kPairs];
  const int64_t col0 = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) * V;
  const int valid = col0 < N ? static_cast<int>(N - col0 < V ? N - col0 : V) : 0;
  const int64_t k_begin = static_cast<int64_t>(blockIdx.y) * rows_per_split;
  const int64_t k_end = k_begin + rows_per_split < K ? k_begin + rows_per_split : K;
  for (int64_t chunk = blockIdx.z; chunk < chunks; chunk += gridDim.z) {
    const int64_t p0 = chunk * kPairs;
    const int n_pairs = static_cast<int>(P - p0 < kPairs ? P - p0 : kPairs);
    __syncthreads();  // the previous chunk is done with expert[] and xs
    if (threadIdx.x < kPairs)
      expert[threadIdx.x] = threadIdx.x < n_pairs ? internal::ExpertOfPair(offsets, E, p0 + threadIdx.x) : -1;
    __syncthreads();
    for (int r = 0; r < n_pairs;) {  // block-uniform: every thread walks the same runs
      const int64_t e = expert[r];
      int len = 1;
      while (r + len < n_pairs && expert[r + len] == e) ++len;
      const T* w = e < 0 ? nullptr : static_cast<const T*>(weights[e]);
      if (w != nullptr) {
        const bool vec = N % V == 0 && reinterpret_cast<uintptr_t>(w) % 16 == 0;
        float acc[kPairs][V];
#pragma unroll
        for (int j = 0; j < kPairs; ++j)
#pragma unroll
          for (int c = 0; c < V; ++c) acc[j][c] = 0.0f;
        for (int64_t t0 = k_begin; t0 < k_end; t0 += kKTile) {
          const int rows = static_cast<int>(k_end - t0 < kKTile ? k_end - t0 : kKTile);
          __syncthreads();  // the previous tile's xs is consumed
          // Only the tile's `rows` columns are read below; pairs past the run read as 0 (their
          // accumulators are never stored).
          for (int i = threadIdx.x; i < kPairs * rows; i += blockDim.x) {
            const int j = i / rows, k = i - j * rows;
            xs[j][k] = j < len ? x[(p0 + r + j) * ldx + t0 + k] : 0.0f;
          }
          __syncthreads();
          if (valid > 0) {
            const T* wt = w + t0 * N + col0;
            if (vec) {
              RowsVector<T>(wt, N, rows, xs, acc);
            } else {
              RowsScalar<T>(wt, N, rows, valid, xs, acc);
            }
          }
        }
        if (valid > 0) {
#pragma unroll
          for (int j = 0; j < kPairs; ++j) {
            if (j >= len) break;
            float* dst = out + (p0 + r + j) * ldo + static_cast<int64_t>(blockIdx.y) * split_stride + col0;
#pragma unroll
            for (int c = 0; c < V; ++c)
              if (c < valid) dst[c] = acc[j][c];
          }
        }
      }
      r += len;
    }
  }
}

// y[p, n] = Σ_s scratch[p, s, n], s ascending, for the pairs whose expert has weights here.
__global__ void SumSplitsKernel(const float* scratch, int64_t P, int64_t N, int64_t splits, const int32_t* offsets,
                                int64_t E, const void* const* weights, float* y, int64_t ldy) {
  const int64_t n = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  for (int64_t p = blockIdx.y; p < P; p += gridDim.y) {
    const int64_t e = internal::ExpertOfPair(offsets, E, p);
    if (n >= N || e < 0 || weights[e] == nullptr) continue;
    const float* src = scratch + p * splits * N + n;
    float acc = src[0];
    for (int64_t s = 1; s < splits; ++s) acc += src[s * N];
    y[p * ldy + n] = acc;
  }
}

// The launch rule (see expert_gemv.h, internal::kGemv*): threads = min(128, the columns' 16-byte
// groups rounded up to a warp); chunks of 4 pairs; splits = ceil(528 / (column tiles · chunks)), at
// most 256, at most K/16 (each split ≥ 16 rows), then evened out: rows_per_split = ceil(K / splits).
struct Plan {
  int threads;
  int64_t col_tiles, chunks, splits, rows_per_split;
};

Plan MakePlan(int64_t P, int64_t K, int64_t N, int V) {
  Plan pl{};
  const int64_t groups = (N + V - 1) / V;
  const int64_t warps = (groups + 31) / 32;
  pl.threads = static_cast<int>(warps * 32 < kGemvMaxThreads ? warps * 32 : kGemvMaxThreads);
  const int64_t tile = static_cast<int64_t>(pl.threads) * V;
  pl.col_tiles = (N + tile - 1) / tile;
  pl.chunks = (P + kPairs - 1) / kPairs;
  const int64_t base = pl.col_tiles * pl.chunks;
  int64_t splits = (internal::kGemvTargetBlocks + base - 1) / base;
  const int64_t by_rows = K / internal::kGemvMinRows;
  if (splits > by_rows) splits = by_rows;
  const int64_t cap = internal::ExpertGemvMaxSplits(P, N);  // what the scratch holds (never binding)
  if (splits > cap) splits = cap;
  if (splits < 1 || K == 0) splits = 1;
  pl.rows_per_split = K == 0 ? 1 : (K + splits - 1) / splits;
  pl.splits = K == 0 ? 1 : (K + pl.rows_per_split - 1) / pl.rows_per_split;
  return pl;
}

template <typename T>
Status Launch(const float* x, int64_t ldx, int64_t P, int64_t K, const int32_t* offsets, int64_t E,
              const void* const* weights, int64_t N, float* y, int64_t ldy, void* scratch, cudaStream_t stream) {
  const Plan pl = MakePlan(P, K, N, kVec<T>);
  const bool split = pl.splits > 1;
  float* out = split ? static_cast<float*>(scratch) : y;
  const int64_t ldo = split ? pl.splits * N : ldy;
  const dim3 grid(static_cast<unsigned>(pl.col_tiles), static_cast<unsigned>(pl.splits),
                  static_cast<unsigned>(pl.chunks < kMaxGridYZ ? pl.chunks : kMaxGridYZ));
  ExpertGemvKernel<T><<<grid, pl.threads, 0, stream>>>(x, ldx, P, K, offsets, E, weights, N, pl.rows_per_split,
                                                       pl.chunks, out, ldo, split ? N : 0);
  BRICK_RETURN_IF_ERROR(detail::LaunchStatus("ExpertGemv"));
  if (!split) return Status::Ok();
  const dim3 reduce_grid(detail::Blocks(N, kReduceThreads), static_cast<unsigned>(P < kMaxGridYZ ? P : kMaxGridYZ));
  SumSplitsKernel<<<reduce_grid, kReduceThreads, 0, stream>>>(out, P, N, pl.splits, offsets, E, weights, y, ldy);
  return detail::LaunchStatus("ExpertGemvSumSplits");
}

}  // namespace

Status ExpertGemvCuda(const float* x, int64_t ldx, int64_t P, int64_t K, const int32_t* offsets, int64_t E,
                      const void* const* weights, DType wt, int64_t N, float* y, int64_t ldy, void* scratch,
                      CudaStream stream) {
  BRICK_RETURN_IF_ERROR(internal::CheckExpertGemv(ldx, P, K, E, wt, N, ldy, scratch, ExpertGemvScratchBytes(P, N)));
  if (P == 0 || N == 0) return Status::Ok();
  const cudaStream_t s = detail::AsStream(stream);
  switch (wt) {
    case DType::kBF16:
      return Launch<__nv_bfloat16>(x, ldx, P, K, offsets, E, weights, N, y, ldy, scratch, s);
    case DType::kF16:
      return Launch<__half>(x, ldx, P, K, offsets, E, weights, N, y, ldy, scratch, s);
    default:
      return Launch<float>(x, ldx, P, K, offsets, E, weights, N, y, ldy, scratch, s);
  }
}

}  // namespace brickrt::cuda
