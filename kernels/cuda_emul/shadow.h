// Internal to kernels/cuda_emul: the emulated device memory (a memfd mapped twice: PROT_NONE at the
// address handed out as the "device pointer", read/write at a shadow address the emulated kernels use),
// the registry of live allocations, streams and handles, and the translation device pointer → shadow.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "core/status.h"
#include "kernels/cuda/memory.h"

namespace brickrt::cuda::emul {

// A new emulated allocation of `bytes` (> 0): returns the device address (host access faults). Its
// contents are filled with 0xFF bytes (F32 NaN, int32 −1) up to kPoisonBytes, as cudaMalloc does not
// zero memory: code that reads what it never wrote fails here too. Internal on an OS failure.
inline constexpr size_t kPoisonBytes = size_t{1} << 30;
Result<void*> MapDevice(size_t bytes);
// Frees an allocation made by MapDevice (its start address); anything else is a programmer error.
void UnmapDevice(void* device);

// True when p lies inside a live emulated device allocation.
bool IsDevice(const void* p);

// The shadow (host-accessible) address of the device range [p, p + bytes), or InvalidArgument naming
// `what` when the range is not inside one live device allocation: a host pointer passed to a GPU
// kernel, a freed buffer, or an access past the end of a buffer. Zero bytes: nullptr, never an error.
Result<void*> ShadowBytes(const void* p, size_t bytes, const std::string& what);

// Typed form over `count` elements: const T* in, const T* out.
template <typename T>
Result<T*> Shadow(T* p, size_t count, const std::string& what) {
  auto r = ShadowBytes(p, count * sizeof(T), what);
  if (!r.ok()) return r.status();
  return static_cast<T*>(*r);
}

// Elements of a row-major [rows, cols] matrix with row stride ld (0 for an empty one).
inline size_t Span(int64_t rows, int64_t ld, int64_t cols) {
  return rows <= 0 || cols <= 0 ? 0 : static_cast<size_t>((rows - 1) * ld + cols);
}

// InvalidArgument unless p is host memory: a device pointer read or written by the host.
Status RequireHost(const void* p, const std::string& what);

// Dummy stream and cuBLAS handles: unique non-null tokens (never reused, never dereferenceable),
// registered while alive.
enum class Token { kStream, kCublas };
void* NewToken(Token kind);
void DeleteToken(Token kind, void* token);
bool IsLive(Token kind, const void* token);
// OK for the legacy default stream (nullptr) and a live Stream; InvalidArgument otherwise (a
// destroyed stream, or something else passed as one).
Status CheckStream(CudaStream stream, const std::string& op);

// A cuBLAS handle serves one thread at a time: Claim is false while another call holds it.
bool ClaimHandle(const void* token);
void ReleaseHandle(const void* token);

// Pinned host memory (PinnedMemory): page-aligned host allocations, registered while alive.
void* AllocatePinned(size_t bytes);  // nullptr when out of memory
void FreePinned(void* p);            // also drops copies still pending into it
bool IsPinned(const void* p, size_t bytes);

// A device→host copy into pinned memory is the one operation that does not complete when it is
// enqueued, as on a GPU: the bytes are taken now (the stream's earlier work has run) and land in dst
// when `stream` is synchronized (Stream::Synchronize, CopyToHost on it, or its destruction), so code
// that reads the result before synchronizing sees stale memory here too.
void DeferCopy(CudaStream stream, void* dst, const void* src_shadow, size_t bytes);
void CompletePending(CudaStream stream);

}  // namespace brickrt::cuda::emul
