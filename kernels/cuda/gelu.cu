// GELU kernels: the same F32 formulas as the portable CPU variants (kernels/cpu/gelu.cpp).
#include "kernels/cuda/cuda_util.cuh"
#include "kernels/cuda/gelu.h"

namespace brickrt::cuda {
namespace {

constexpr int kThreads = 256;

__global__ void GeluErfKernel(float* x, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
  }
}

__global__ void GeluTanhKernel(float* x, int64_t n) {
  // 0.5·x·(1 + tanh(u)) = x / (1 + exp(−2u)), as on the CPU; x → −∞ gives −0.
  constexpr float kC = 0.7978845608028654f;  // √(2/π)
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float v = x[i];
    const float u = kC * (v + 0.044715f * v * v * v);
    x[i] = v / (1.0f + expf(-2.0f * u));
  }
}

unsigned GridFor(int64_t n) {
  const int64_t blocks = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(blocks < 65535 ? blocks : 65535);  // grid-stride loop covers the rest
}

}  // namespace

Status GeluErfCuda(float* x, int64_t n, CudaStream stream) {
  if (n == 0) return Status::Ok();
  GeluErfKernel<<<GridFor(n), kThreads, 0, detail::AsStream(stream)>>>(x, n);
  return detail::LaunchStatus("GeluErf");
}

Status GeluTanhCuda(float* x, int64_t n, CudaStream stream) {
  if (n == 0) return Status::Ok();
  GeluTanhKernel<<<GridFor(n), kThreads, 0, detail::AsStream(stream)>>>(x, n);
  return detail::LaunchStatus("GeluTanh");
}

}  // namespace brickrt::cuda
