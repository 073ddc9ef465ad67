// Device memory, pinned host memory, streams and copies behind the CUDA-free handles of memory.h.
#include "kernels/cuda/cuda_util.cuh"
#include "kernels/cuda/memory.h"

#include <utility>

namespace brickrt::cuda {

using detail::AsStream;
using detail::CheckCuda;

namespace detail {
void FreeDevice(void* p) noexcept { cudaFree(p); }
void FreePinned(void* p) noexcept { cudaFreeHost(p); }
}  // namespace detail

Result<DeviceMemory> DeviceMemory::Allocate(size_t bytes) {
  if (bytes == 0) return Result<DeviceMemory>(DeviceMemory());
  void* p = nullptr;
  const cudaError_t e = cudaMalloc(&p, bytes);
  if (e != cudaSuccess) {
    cudaGetLastError();  // clear a sticky "no device" error
    return CheckCuda(e, ("allocate " + std::to_string(bytes) + " bytes").c_str());
  }
  return Result<DeviceMemory>(DeviceMemory(p, bytes));
}

Stream& Stream::operator=(Stream&& o) noexcept {
  if (this != &o) {
    if (s_ != nullptr) cudaStreamDestroy(AsStream(s_));
    s_ = o.s_;
    o.s_ = nullptr;
  }
  return *this;
}

Stream::~Stream() {
  if (s_ != nullptr) cudaStreamDestroy(AsStream(s_));
}

Result<Stream> Stream::Create() {
  cudaStream_t s = nullptr;
  const cudaError_t e = cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking);
  if (e != cudaSuccess) {
    cudaGetLastError();
    return CheckCuda(e, "create stream");
  }
  Stream out;
  out.s_ = s;
  return Result<Stream>(std::move(out));
}

Status Stream::Synchronize() const { return CheckCuda(cudaStreamSynchronize(AsStream(s_)), "synchronize stream"); }

Result<PinnedMemory> PinnedMemory::Allocate(size_t bytes) {
  if (bytes == 0) return Result<PinnedMemory>(PinnedMemory());
  void* p = nullptr;
  const cudaError_t e = cudaMallocHost(&p, bytes);
  if (e != cudaSuccess) {
    cudaGetLastError();  // clear a sticky "no device" error
    return CheckCuda(e, ("allocate " + std::to_string(bytes) + " pinned bytes").c_str());
  }
  return Result<PinnedMemory>(PinnedMemory(p, bytes));
}

Status CopyToDevice(void* dst, const void* src, size_t bytes, CudaStream stream) {
  if (bytes == 0) return Status::Ok();
  return CheckCuda(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, AsStream(stream)), "copy to device");
}

Status CopyToHost(void* dst, const void* src, size_t bytes, CudaStream stream) {
  if (bytes == 0) return Status::Ok();
  BRICK_RETURN_IF_ERROR(CopyToHostAsync(dst, src, bytes, stream));
  return CheckCuda(cudaStreamSynchronize(AsStream(stream)), "synchronize after copy to host");
}

Status CopyToHostAsync(void* dst, const void* src, size_t bytes, CudaStream stream) {
  if (bytes == 0) return Status::Ok();
  return CheckCuda(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, AsStream(stream)), "copy to host");
}

Status CopyOnDevice(void* dst, const void* src, size_t bytes, CudaStream stream) {
  if (bytes == 0) return Status::Ok();
  return CheckCuda(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, AsStream(stream)), "copy on device");
}

Status ZeroDevice(void* dst, size_t bytes, CudaStream stream) {
  if (bytes == 0) return Status::Ok();
  return CheckCuda(cudaMemsetAsync(dst, 0, bytes, AsStream(stream)), "memset");
}

}  // namespace brickrt::cuda
