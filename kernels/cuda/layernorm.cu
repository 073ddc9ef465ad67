// LayerNorm kernel: one block per row, block reductions for the mean and the variance.
#include "kernels/cuda/cuda_util.cuh"
#include "kernels/cuda/layernorm.h"

namespace brickrt::cuda {
namespace {

constexpr int kThreads = 256;

__global__ void LayerNormKernel(const float* x, int64_t D, const void* w, const void* b, DType wt, float eps,
                                float* y) {
  __shared__ float scratch[32];
  const float* xr = x + blockIdx.x * D;
  float* yr = y + blockIdx.x * D;
  float s = 0;
  for (int64_t i = threadIdx.x; i < D; i += blockDim.x) s += xr[i];
  const float mean = detail::BlockSum(s, scratch) / static_cast<float>(D);
  float ss = 0;
  for (int64_t i = threadIdx.x; i < D; i += blockDim.x) {
    const float d = xr[i] - mean;
    ss += d * d;
  }
  const float var = detail::BlockSum(ss, scratch) / static_cast<float>(D);
  const float inv = 1.0f / sqrtf(var + eps);  // sqrtf is correctly rounded without --use_fast_math
  // Every thread has read its row elements for both sums before any is written (BlockSum syncs), so
  // y may alias x.
  for (int64_t i = threadIdx.x; i < D; i += blockDim.x) {
    yr[i] = (xr[i] - mean) * inv * detail::LoadWidened(w, wt, i) + detail::LoadWidened(b, wt, i);
  }
}

}  // namespace

Status LayerNormCuda(const float* x, int64_t M, int64_t D, const void* w, const void* b, DType wt, float eps, float* y,
                     CudaStream stream) {
  if (M == 0 || D == 0) return Status::Ok();
  LayerNormKernel<<<static_cast<unsigned>(M), kThreads, 0, detail::AsStream(stream)>>>(x, D, w, b, wt, eps, y);
  return detail::LaunchStatus("LayerNorm");
}

}  // namespace brickrt::cuda
