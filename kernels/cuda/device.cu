// CUDA device listing, the current device, and the axpy self-test.
#include <cuda_runtime.h>

#include <cmath>
#include <vector>

#include "kernels/cuda/device.h"

namespace brickrt::cuda {
namespace {

__global__ void Axpy(float a, const float* x, float* y, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = a * x[i] + y[i];
}

// Owns one device allocation.
struct DeviceBuffer {
  float* ptr = nullptr;
  DeviceBuffer() = default;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() {
    if (ptr != nullptr) cudaFree(ptr);
  }
};

Status Check(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return Status::Ok();
  return Internal(std::string("CUDA ") + what + ": " + cudaGetErrorString(e));
}

}  // namespace

std::vector<CudaDevice> ListDevices() {
  std::vector<CudaDevice> out;
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" error
    return out;
  }
  for (int i = 0; i < n; ++i) {
    cudaDeviceProp p{};
    if (cudaGetDeviceProperties(&p, i) != cudaSuccess) continue;
    out.push_back({i, p.name, p.major, p.minor, p.totalGlobalMem});
  }
  return out;
}

Status UseDevice(int device) {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" error
    n = 0;
  }
  if (device < 0 || device >= n)
    return Unavailable("no CUDA device " + std::to_string(device) + " (" + std::to_string(n) + " visible)");
  return Check(cudaSetDevice(device), "set device");
}

Status SelfTest(int device, int n) {
  BRICK_RETURN_IF_ERROR(UseDevice(device));
  std::vector<float> x(static_cast<size_t>(n)), y(static_cast<size_t>(n)), out(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    x[i] = static_cast<float>(i % 97) * 0.5f;
    y[i] = static_cast<float>(i % 13);
  }
  const size_t bytes = static_cast<size_t>(n) * sizeof(float);
  DeviceBuffer dx, dy;
  BRICK_RETURN_IF_ERROR(Check(cudaMalloc(&dx.ptr, bytes), "malloc"));
  BRICK_RETURN_IF_ERROR(Check(cudaMalloc(&dy.ptr, bytes), "malloc"));
  BRICK_RETURN_IF_ERROR(Check(cudaMemcpy(dx.ptr, x.data(), bytes, cudaMemcpyHostToDevice), "copy to device"));
  BRICK_RETURN_IF_ERROR(Check(cudaMemcpy(dy.ptr, y.data(), bytes, cudaMemcpyHostToDevice), "copy to device"));
  Axpy<<<(n + 255) / 256, 256>>>(2.0f, dx.ptr, dy.ptr, n);
  BRICK_RETURN_IF_ERROR(Check(cudaGetLastError(), "kernel launch"));
  BRICK_RETURN_IF_ERROR(Check(cudaMemcpy(out.data(), dy.ptr, bytes, cudaMemcpyDeviceToHost), "copy to host"));
  for (int i = 0; i < n; ++i) {
    if (out[i] != 2.0f * x[i] + y[i])
      return Internal("CUDA self-test: element " + std::to_string(i) + " is " + std::to_string(out[i]));
  }
  return Status::Ok();
}

}  // namespace brickrt::cuda
