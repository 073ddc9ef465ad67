// Greedy argmax: one block per row, a (value, index) reduction in the CPU Sampler's order.
#include "kernels/cuda/cuda_util.cuh"
#include "kernels/cuda/sampling.h"

namespace brickrt::cuda {
namespace {

constexpr int kThreads = 256;

// True when candidate (va, a) beats (vb, b): NaN never beats a number, larger value wins, equal
// values go to the lower index. Together with the logits[0]-is-NaN rule below this reproduces the
// CPU's sequential `if (l[i] > l[best]) best = i` scan from best = 0.
__device__ inline bool Beats(float va, int64_t a, float vb, int64_t b) {
  if (b < 0) return a >= 0;
  if (a < 0) return false;
  const bool nan_a = isnan(va), nan_b = isnan(vb);
  if (nan_a != nan_b) return nan_b;
  if (!nan_a && va != vb) return va > vb;
  return a < b;
}

__global__ void ArgmaxKernel(const float* logits, int64_t V, int32_t* ids) {
  __shared__ float sv[kThreads];
  __shared__ int64_t si[kThreads];
  const float* l = logits + blockIdx.x * V;
  float bv = 0;
  int64_t bi = -1;
  for (int64_t i = threadIdx.x; i < V; i += blockDim.x) {
    if (Beats(l[i], i, bv, bi)) bv = l[i], bi = i;
  }
  sv[threadIdx.x] = bv;
  si[threadIdx.x] = bi;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s && Beats(sv[threadIdx.x + s], si[threadIdx.x + s], sv[threadIdx.x], si[threadIdx.x])) {
      sv[threadIdx.x] = sv[threadIdx.x + s];
      si[threadIdx.x] = si[threadIdx.x + s];
    }
    __syncthreads();
  }
  // The CPU compares against logits[best] starting from best = 0: a NaN there is never replaced.
  if (threadIdx.x == 0) ids[blockIdx.x] = isnan(l[0]) ? 0 : static_cast<int32_t>(si[0]);
}

}  // namespace

Status ArgmaxCuda(const float* logits, int64_t M, int64_t V, int32_t* ids, CudaStream stream) {
  if (V < 1) return InvalidArgument("ArgmaxCuda: empty vocabulary");
  if (M == 0) return Status::Ok();
  ArgmaxKernel<<<static_cast<unsigned>(M), kThreads, 0, detail::AsStream(stream)>>>(logits, V, ids);
  return detail::LaunchStatus("Argmax");
}

}  // namespace brickrt::cuda
