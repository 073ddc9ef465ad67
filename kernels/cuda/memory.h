// Host-side handles for the CUDA kernels: device memory, streams and copies, with no CUDA types, so
// code compiled by the host compiler (bricks, tests, benches) can drive the kernels.
#pragma once

#include <cstddef>

#include "core/status.h"

namespace brickrt::cuda {

// A cudaStream_t passed as an opaque pointer; nullptr is the legacy default stream. Every kernel entry
// point in kernels/cuda/ takes one and only enqueues work on it: nothing synchronizes unless its
// contract says so, and no entry point allocates device memory per call.
using CudaStream = void*;

// One device allocation on the current device (cudaMalloc), freed on destruction. Move-only.
class DeviceMemory {
 public:
  DeviceMemory() = default;
  DeviceMemory(DeviceMemory&& o) noexcept : ptr_(o.ptr_), bytes_(o.bytes_) { o.ptr_ = nullptr, o.bytes_ = 0; }
  DeviceMemory& operator=(DeviceMemory&& o) noexcept;
  DeviceMemory(const DeviceMemory&) = delete;
  DeviceMemory& operator=(const DeviceMemory&) = delete;
  ~DeviceMemory();

  // Unavailable without a device, Internal with the CUDA error string on any other failure.
  static Result<DeviceMemory> Allocate(size_t bytes);

  void* data() const { return ptr_; }
  template <typename T>
  T* as() const { return static_cast<T*>(ptr_); }
  size_t bytes() const { return bytes_; }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

// A non-blocking CUDA stream, destroyed (after its work completes) on destruction. Move-only.
class Stream {
 public:
  Stream() = default;
  Stream(Stream&& o) noexcept : s_(o.s_) { o.s_ = nullptr; }
  Stream& operator=(Stream&& o) noexcept;
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  ~Stream();

  static Result<Stream> Create();
  CudaStream get() const { return s_; }
  // Blocks until every operation enqueued on the stream has finished; reports kernel faults.
  Status Synchronize() const;

 private:
  CudaStream s_ = nullptr;
};

// Enqueue a copy on `stream` (asynchronous for pinned host memory, otherwise staged by the driver).
Status CopyToDevice(void* dst, const void* src, size_t bytes, CudaStream stream);
// Copies and then synchronizes `stream`: on return the host buffer holds the data.
Status CopyToHost(void* dst, const void* src, size_t bytes, CudaStream stream);
// cudaMemsetAsync to zero.
Status ZeroDevice(void* dst, size_t bytes, CudaStream stream);

}  // namespace brickrt::cuda
