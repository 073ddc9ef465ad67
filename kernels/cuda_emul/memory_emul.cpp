// Emulated memory.h: device memory the host cannot dereference (shadow.h), dummy streams, pinned memory
// as aligned host memory, and copies that check which side of the bus each pointer is on.
#include <cstring>
#include <string>
#include <utility>

#include "kernels/cuda/memory.h"
#include "kernels/cuda_emul/shadow.h"

namespace brickrt::cuda {

namespace detail {
void FreeDevice(void* p) noexcept { emul::UnmapDevice(p); }
void FreePinned(void* p) noexcept { emul::FreePinned(p); }
}  // namespace detail

Result<DeviceMemory> DeviceMemory::Allocate(size_t bytes) {
  if (bytes == 0) return Result<DeviceMemory>(DeviceMemory());
  BRICK_ASSIGN_OR_RETURN(void* p, emul::MapDevice(bytes));
  return Result<DeviceMemory>(DeviceMemory(p, bytes));
}

Stream& Stream::operator=(Stream&& o) noexcept {
  if (this != &o) {
    Stream dying;  // the old stream goes as ~Stream does it
    dying.s_ = s_;
    s_ = o.s_;
    o.s_ = nullptr;
  }
  return *this;
}

Stream::~Stream() {
  if (s_ == nullptr) return;
  emul::CompletePending(s_);  // cudaStreamDestroy lets enqueued work finish
  emul::DeleteToken(emul::Token::kStream, s_);
}

Result<Stream> Stream::Create() {
  Stream out;
  out.s_ = emul::NewToken(emul::Token::kStream);
  return Result<Stream>(std::move(out));
}

// Work runs eagerly when it is enqueued; only copies into pinned memory wait for this.
Status Stream::Synchronize() const {
  BRICK_RETURN_IF_ERROR(emul::CheckStream(s_, "Stream::Synchronize"));
  emul::CompletePending(s_);
  return Status::Ok();
}

Result<PinnedMemory> PinnedMemory::Allocate(size_t bytes) {
  if (bytes == 0) return Result<PinnedMemory>(PinnedMemory());
  void* p = emul::AllocatePinned(bytes);
  if (p == nullptr) return Internal("CUDA emulation: allocate " + std::to_string(bytes) + " pinned bytes");
  return Result<PinnedMemory>(PinnedMemory(p, bytes));
}

Status CopyToDevice(void* dst, const void* src, size_t bytes, CudaStream stream) {
  if (bytes == 0) return Status::Ok();
  BRICK_RETURN_IF_ERROR(emul::CheckStream(stream, "CopyToDevice"));
  BRICK_RETURN_IF_ERROR(emul::RequireHost(src, "CopyToDevice: src"));
  BRICK_ASSIGN_OR_RETURN(void* d, emul::ShadowBytes(dst, bytes, "CopyToDevice: dst"));
  std::memcpy(d, src, bytes);
  return Status::Ok();
}

namespace {

// Copies into pageable memory complete on return (as cudaMemcpyAsync to pageable memory does); a copy
// into pinned memory lands when its stream is synchronized (shadow.h, DeferCopy).
Status EnqueueToHost(const std::string& op, void* dst, const void* src, size_t bytes, CudaStream stream) {
  BRICK_RETURN_IF_ERROR(emul::CheckStream(stream, op));
  BRICK_RETURN_IF_ERROR(emul::RequireHost(dst, op + ": dst"));
  BRICK_ASSIGN_OR_RETURN(const void* s, emul::ShadowBytes(src, bytes, op + ": src"));
  if (emul::IsPinned(dst, bytes)) {
    emul::DeferCopy(stream, dst, s, bytes);
  } else {
    std::memcpy(dst, s, bytes);
  }
  return Status::Ok();
}

}  // namespace

Status CopyToHost(void* dst, const void* src, size_t bytes, CudaStream stream) {
  if (bytes == 0) return Status::Ok();
  BRICK_RETURN_IF_ERROR(EnqueueToHost("CopyToHost", dst, src, bytes, stream));
  emul::CompletePending(stream);  // then synchronize the stream
  return Status::Ok();
}

Status CopyToHostAsync(void* dst, const void* src, size_t bytes, CudaStream stream) {
  if (bytes == 0) return Status::Ok();
  return EnqueueToHost("CopyToHostAsync", dst, src, bytes, stream);
}

Status CopyOnDevice(void* dst, const void* src, size_t bytes, CudaStream stream) {
  if (bytes == 0) return Status::Ok();
  BRICK_RETURN_IF_ERROR(emul::CheckStream(stream, "CopyOnDevice"));
  BRICK_ASSIGN_OR_RETURN(void* d, emul::ShadowBytes(dst, bytes, "CopyOnDevice: dst"));
  BRICK_ASSIGN_OR_RETURN(const void* s, emul::ShadowBytes(src, bytes, "CopyOnDevice: src"));
  const auto* dc = static_cast<const char*>(d);
  const auto* sc = static_cast<const char*>(s);
  // cudaMemcpyAsync's result is undefined for overlapping ranges: refuse rather than pick one.
  if (dc < sc + bytes && sc < dc + bytes) return InvalidArgument("CopyOnDevice: source and destination overlap");
  std::memcpy(d, s, bytes);
  return Status::Ok();
}

Status ZeroDevice(void* dst, size_t bytes, CudaStream stream) {
  if (bytes == 0) return Status::Ok();
  BRICK_RETURN_IF_ERROR(emul::CheckStream(stream, "ZeroDevice"));
  BRICK_ASSIGN_OR_RETURN(void* d, emul::ShadowBytes(dst, bytes, "ZeroDevice: dst"));
  std::memset(d, 0, bytes);
  return Status::Ok();
}

}  // namespace brickrt::cuda
