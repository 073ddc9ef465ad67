// Host-side handles for the CUDA kernels: device memory, streams and copies, with no CUDA types, so
// code compiled by the host compiler (bricks, tests, benches) can drive the kernels.
#pragma once

#include <cstddef>
#include <utility>

#include "core/status.h"

namespace brickrt::cuda {

// A cudaStream_t passed as an opaque pointer; nullptr is the legacy default stream. Every kernel entry
// point in kernels/cuda/ takes one and only enqueues work on it: nothing synchronizes unless its
// contract says so, and no entry point allocates device memory per call.
using CudaStream = void*;

namespace detail {

// Release one allocation of each kind (cudaFree, cudaFreeHost; the host emulation has its own).
void FreeDevice(void* p) noexcept;
void FreePinned(void* p) noexcept;

// One allocation, released by Free on destruction. Move-only. DeviceMemory and PinnedMemory are this
// with their own allocator.
template <void (*Free)(void*) noexcept>
class OwnedAllocation {
 public:
  OwnedAllocation() = default;
  OwnedAllocation(OwnedAllocation&& o) noexcept
      : ptr_(std::exchange(o.ptr_, nullptr)), bytes_(std::exchange(o.bytes_, size_t{0})) {}
  OwnedAllocation& operator=(OwnedAllocation&& o) noexcept {
    if (this != &o) {
      Release();
      ptr_ = std::exchange(o.ptr_, nullptr);
      bytes_ = std::exchange(o.bytes_, size_t{0});
    }
    return *this;
  }
  OwnedAllocation(const OwnedAllocation&) = delete;
  OwnedAllocation& operator=(const OwnedAllocation&) = delete;
  ~OwnedAllocation() { Release(); }

  void* data() const { return ptr_; }
  template <typename T>
  T* as() const { return static_cast<T*>(ptr_); }
  size_t bytes() const { return bytes_; }

 protected:
  OwnedAllocation(void* ptr, size_t bytes) : ptr_(ptr), bytes_(bytes) {}

 private:
  void Release() noexcept {
    if (ptr_ != nullptr) Free(ptr_);
    ptr_ = nullptr;
    bytes_ = 0;
  }
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace detail

// One device allocation on the current device (cudaMalloc), freed on destruction. Move-only.
class DeviceMemory : public detail::OwnedAllocation<detail::FreeDevice> {
 public:
  DeviceMemory() = default;
  // Unavailable without a device, Internal with the CUDA error string on any other failure.
  static Result<DeviceMemory> Allocate(size_t bytes);

 private:
  DeviceMemory(void* ptr, size_t bytes) : OwnedAllocation(ptr, bytes) {}
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

// Page-locked host memory (cudaMallocHost), freed on destruction. Move-only. Copies between it and the
// device are truly asynchronous, so a host thread can go on working while they run.
class PinnedMemory : public detail::OwnedAllocation<detail::FreePinned> {
 public:
  PinnedMemory() = default;
  // Unavailable without a device, Internal with the CUDA error string on any other failure.
  static Result<PinnedMemory> Allocate(size_t bytes);

 private:
  PinnedMemory(void* ptr, size_t bytes) : OwnedAllocation(ptr, bytes) {}
};

// A bump allocator over one DeviceMemory: every buffer of a model's weights or of a session's scratch
// is carved from one cudaMalloc made up front (the device memory pool), so nothing is allocated while
// serving. Pure pointer arithmetic on the host; the memory is never touched here.
class DeviceArena {
 public:
  static constexpr size_t kAlign = 256;  // cudaMalloc's own alignment: every carve is coalescing-friendly
  static constexpr size_t Round(size_t bytes) { return (bytes + kAlign - 1) / kAlign * kAlign; }

  DeviceArena() = default;
  explicit DeviceArena(DeviceMemory memory) : memory_(std::move(memory)) {}

  // The next `bytes` (rounded up to kAlign), or nullptr when the arena is exhausted (a sizing bug of
  // the caller, who planned the arena from the same Round()ed sizes). Zero bytes gives nullptr.
  void* Carve(size_t bytes) {
    if (bytes == 0 || Round(bytes) > memory_.bytes() - used_) return nullptr;
    void* p = static_cast<char*>(memory_.data()) + used_;
    used_ += Round(bytes);
    return p;
  }
  template <typename T>
  T* Carve(size_t n) { return static_cast<T*>(Carve(n * sizeof(T))); }

  size_t used() const { return used_; }
  size_t capacity() const { return memory_.bytes(); }

 private:
  DeviceMemory memory_;
  size_t used_ = 0;
};

// Enqueue a copy on `stream` (asynchronous for pinned host memory, otherwise staged by the driver).
Status CopyToDevice(void* dst, const void* src, size_t bytes, CudaStream stream);
// Copies and then synchronizes `stream`: on return the host buffer holds the data.
Status CopyToHost(void* dst, const void* src, size_t bytes, CudaStream stream);
// Enqueues a device→host copy without waiting (dst should be PinnedMemory for the copy to overlap
// host work); the data is there once `stream` is synchronized.
Status CopyToHostAsync(void* dst, const void* src, size_t bytes, CudaStream stream);
// Enqueues a device→device copy on `stream`.
Status CopyOnDevice(void* dst, const void* src, size_t bytes, CudaStream stream);
// cudaMemsetAsync to zero.
Status ZeroDevice(void* dst, size_t bytes, CudaStream stream);

}  // namespace brickrt::cuda
