// MoE dispatch kernels: stable counting sort by expert, row gather, gated deterministic combine, and
// the per-expert GEMM loop.
#include "kernels/cuda/cuda_util.cuh"
#include "kernels/cuda/expert_gemm.h"

namespace brickrt::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kMaxTopK = 16;

// One block. Counts with shared atomics (order-free), a serial exclusive scan (E is small), then each
// thread owns experts and walks all pairs in order, which keeps the fill stable: the same rows[] as
// the CPU's running-cursor loop. O(E·P/threads) reads per thread; fine for router-sized E.
__global__ void BuildGroupsKernel(const int32_t* ids, const float* gates, int64_t P, int k, int64_t E,
                                  int32_t* offsets, int32_t* rows, float* pair_gates, int32_t* pair_of) {
  extern __shared__ int32_t start[];  // [E + 1]
  for (int64_t e = threadIdx.x; e <= E; e += blockDim.x) start[e] = 0;
  __syncthreads();
  for (int64_t p = threadIdx.x; p < P; p += blockDim.x) {
    const int32_t id = ids[p];
    if (id >= 0 && id < E) {
      atomicAdd(&start[id + 1], 1);
    } else {
      pair_of[p] = -1;
    }
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int64_t e = 0; e < E; ++e) start[e + 1] += start[e];
  }
  __syncthreads();
  for (int64_t e = threadIdx.x; e <= E; e += blockDim.x) offsets[e] = start[e];
  for (int64_t e = threadIdx.x; e < E; e += blockDim.x) {
    int32_t cursor = start[e];
    for (int64_t p = 0; p < P; ++p) {
      if (ids[p] != e) continue;
      rows[cursor] = static_cast<int32_t>(p / k);
      pair_gates[cursor] = gates[p];
      pair_of[p] = cursor;
      ++cursor;
    }
  }
}

__global__ void GatherKernel(const float* x, int64_t D, const int32_t* rows, float* out) {
  const float* src = x + static_cast<int64_t>(rows[blockIdx.x]) * D;
  float* dst = out + blockIdx.x * D;
  for (int64_t i = threadIdx.x; i < D; i += blockDim.x) dst[i] = src[i];
}

// One block per token row: its k pair indices sorted ascending, then the gated adds in that order,
// each element `dst += gate * src` exactly as bricks' ScatterAddGated does it per expert.
__global__ void CombineKernel(const float* y, int64_t D, const int32_t* pair_of, const float* pair_gates, int k,
                              float* h) {
  int32_t order[kMaxTopK];
  int n = 0;
  for (int s = 0; s < k; ++s) {
    const int32_t p = pair_of[blockIdx.x * static_cast<int64_t>(k) + s];
    if (p < 0) continue;
    int at = n++;
    while (at > 0 && order[at - 1] > p) {
      order[at] = order[at - 1];
      --at;
    }
    order[at] = p;
  }
  float* dst = h + blockIdx.x * D;
  for (int64_t i = threadIdx.x; i < D; i += blockDim.x) {
    float acc = dst[i];
    for (int j = 0; j < n; ++j) acc += pair_gates[order[j]] * y[static_cast<int64_t>(order[j]) * D + i];
    dst[i] = acc;
  }
}

}  // namespace

Status BuildExpertGroupsCuda(const int32_t* ids, const float* gates, int64_t M, int k, int64_t E, int32_t* offsets,
                             int32_t* rows, float* pair_gates, int32_t* pair_of, CudaStream stream) {
  if (E < 1 || k < 1) return InvalidArgument("BuildExpertGroupsCuda: need E >= 1 and k >= 1");
  const size_t shared = static_cast<size_t>(E + 1) * sizeof(int32_t);
  if (shared > 48 * 1024) return InvalidArgument("BuildExpertGroupsCuda: too many experts for one block");
  BuildGroupsKernel<<<1, kThreads, shared, detail::AsStream(stream)>>>(ids, gates, M * k, k, E, offsets, rows,
                                                                       pair_gates, pair_of);
  return detail::LaunchStatus("BuildExpertGroups");
}

Status GatherRowsCuda(const float* x, int64_t D, const int32_t* rows, int64_t P, float* out, CudaStream stream) {
  if (P == 0 || D == 0) return Status::Ok();
  GatherKernel<<<static_cast<unsigned>(P), kThreads, 0, detail::AsStream(stream)>>>(x, D, rows, out);
  return detail::LaunchStatus("GatherRows");
}

Status CombineGatedCuda(const float* y, int64_t D, const int32_t* pair_of, const float* pair_gates, int64_t M, int k,
                        float* h, CudaStream stream) {
  if (k < 1 || k > kMaxTopK) return InvalidArgument("CombineGatedCuda: need 1 <= k <= 16");
  if (M == 0 || D == 0) return Status::Ok();
  CombineKernel<<<static_cast<unsigned>(M), kThreads, 0, detail::AsStream(stream)>>>(y, D, pair_of, pair_gates, k,
                                                                                      h);
  return detail::LaunchStatus("CombineGated");
}

Status ExpertMatmulCuda(const CublasHandle& handle, const float* x_sorted, const int32_t* host_offsets, int64_t E,
                        int64_t K, const void* const* weights, DType wt, int64_t N, bool transposed, float* y_sorted,
                        void* scratch, CudaStream stream) {
  // One GEMM per expert on the caller's stream. The grouped alternative goes here: one
  // cublasGemmGroupedBatchedEx call (cuBLAS >= 12.5) over the experts with pairs, with the pointer
  // arrays (A_e = W_e, B_e = x_sorted + offsets[e]·K, C_e = y_sorted + offsets[e]·N) and m/n/k arrays
  // built on the host from host_offsets — it saves E launches per layer in prefill; to be measured
  // against this loop on a GPU (issue #8).
  for (int64_t e = 0; e < E; ++e) {
    const int64_t begin = host_offsets[e], count = host_offsets[e + 1] - begin;
    if (count == 0 || weights[e] == nullptr) continue;
    BRICK_RETURN_IF_ERROR(MatmulCuda(handle, x_sorted + begin * K, count, K, weights[e], wt, N, transposed,
                                     y_sorted + begin * N, scratch, stream));
  }
  return Status::Ok();
}

}  // namespace brickrt::cuda
