// Router softmax + top-k: one thread per token row, a line-for-line port of SoftmaxTopK
// (kernels/cpu/softmax_topk.cpp) so that routing ids match the CPU exactly.
#include "kernels/cuda/cuda_util.cuh"
#include "kernels/cuda/softmax_topk.h"

namespace brickrt::cuda {
namespace {

constexpr int kThreads = 128;

// Same total order as the CPU's RanksAbove: larger first, NaN below everything, ties to lower index.
__device__ inline bool RanksAbove(const float* l, int64_t a, int64_t b) {
  const bool nan_a = isnan(l[a]), nan_b = isnan(l[b]);
  if (nan_a != nan_b) return nan_b;
  if (!nan_a && l[a] != l[b]) return l[a] > l[b];
  return a < b;
}

__global__ void SoftmaxTopKKernel(const float* logits, int64_t M, int64_t E, int k, float* gates, int32_t* ids) {
  const int64_t m = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (m >= M) return;
  const float* l = logits + m * E;
  int32_t* id = ids + m * k;
  float* g = gates + m * k;
  // std::max(a, b) is (a < b) ? b : a; fmaxf would drop NaNs differently, so spell it out.
  float mx = l[0];
  for (int64_t e = 1; e < E; ++e) mx = (mx < l[e]) ? l[e] : mx;
  float sum = 0;
  for (int64_t e = 0; e < E; ++e) sum += expf(l[e] - mx);
  const float inv = 1.0f / sum;
  for (int i = 0; i < k; ++i) {
    int32_t best = -1;
    for (int64_t e = 0; e < E; ++e) {
      if (i > 0 && !RanksAbove(l, id[i - 1], e)) continue;  // picked already
      if (best < 0 || RanksAbove(l, e, best)) best = static_cast<int32_t>(e);
    }
    id[i] = best;
    g[i] = expf(l[best] - mx) * inv;
  }
}

}  // namespace

Status SoftmaxTopKCuda(const float* logits, int64_t M, int64_t E, int k, float* gates, int32_t* ids,
                       CudaStream stream) {
  if (k < 1 || k > E) return InvalidArgument("SoftmaxTopKCuda: need 1 <= k <= E, got k=" + std::to_string(k));
  if (M == 0) return Status::Ok();
  SoftmaxTopKKernel<<<detail::Blocks(M, kThreads), kThreads, 0, detail::AsStream(stream)>>>(logits, M, E, k, gates,
                                                                                             ids);
  return detail::LaunchStatus("SoftmaxTopK");
}

}  // namespace brickrt::cuda
