// The registry behind shadow.h: live emulated allocations (start → size, shadow) and live stream /
// cuBLAS tokens, each behind one mutex. Allocations are a memfd mapped twice.
#include "kernels/cuda_emul/shadow.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <vector>

namespace brickrt::cuda::emul {
namespace {

struct Allocation {
  size_t bytes = 0;   // what the caller asked for: the valid range
  size_t mapped = 0;  // bytes rounded up to pages: the length of both mappings
  char* shadow = nullptr;
};

struct PendingCopy {
  char* dst;
  std::vector<char> bytes;
};

struct Registry {
  std::mutex mu;
  std::map<uintptr_t, Allocation> live;  // device start address → allocation
  std::set<const void*> tokens[2];       // indexed by Token
  std::set<const void*> busy_handles;    // cuBLAS handles inside a call
  std::map<uintptr_t, size_t> pinned;    // pinned start address → bytes
  // stream → device→host copies into pinned memory not yet landed, in enqueue order
  std::map<const void*, std::vector<PendingCopy>> pending;
};

Registry& Reg() {
  static Registry* r = new Registry;  // never destroyed: DeviceMemory may outlive static destructors
  return *r;
}

std::string Hex(const void* p) {
  std::ostringstream s;
  s << p;
  return s.str();
}

Status OsError(const char* what, size_t bytes) {
  return Internal(std::string("CUDA emulation: ") + what + " for " + std::to_string(bytes) +
                  " bytes of device memory: " + std::strerror(errno));
}

// The allocation holding address a, or live.end(). REQUIRES: the lock is held.
std::map<uintptr_t, Allocation>::iterator Find(Registry& r, uintptr_t a) {
  auto it = r.live.upper_bound(a);
  if (it == r.live.begin()) return r.live.end();
  --it;
  return a < it->first + it->second.bytes ? it : r.live.end();
}

}  // namespace

Result<void*> MapDevice(size_t bytes) {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  const size_t mapped = (bytes + page - 1) / page * page;
  const int fd = memfd_create("brick-emulated-device-memory", MFD_CLOEXEC);
  if (fd < 0) return OsError("memfd_create", bytes);
  if (ftruncate(fd, static_cast<off_t>(mapped)) != 0) {
    const Status st = OsError("ftruncate", bytes);
    close(fd);
    return st;
  }
  // The device mapping sits between two reserved, never registered pages, so an index a little
  // before or past a buffer is never inside its neighbour.
  char* reserve = static_cast<char*>(
      mmap(nullptr, mapped + 2 * page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0));
  void* device =
      reserve == MAP_FAILED ? MAP_FAILED : mmap(reserve + page, mapped, PROT_NONE, MAP_SHARED | MAP_FIXED, fd, 0);
  void* shadow = device == MAP_FAILED ? MAP_FAILED : mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (shadow == MAP_FAILED) {
    const Status st = OsError("mmap", bytes);
    if (reserve != MAP_FAILED) munmap(reserve, mapped + 2 * page);
    close(fd);
    return st;
  }
  close(fd);  // the mappings keep the memory
  std::memset(shadow, 0xFF, std::min(bytes, kPoisonBytes));
  Registry& r = Reg();
  std::lock_guard<std::mutex> lock(r.mu);
  r.live[reinterpret_cast<uintptr_t>(device)] = {bytes, mapped, static_cast<char*>(shadow)};
  return device;
}

void UnmapDevice(void* device) {
  Allocation a;
  {
    Registry& r = Reg();
    std::lock_guard<std::mutex> lock(r.mu);
    auto it = r.live.find(reinterpret_cast<uintptr_t>(device));
    BRICK_ASSERT(it != r.live.end(), "UnmapDevice: not the start of a live emulated allocation");
    a = it->second;
    r.live.erase(it);
  }
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  munmap(static_cast<char*>(device) - page, a.mapped + 2 * page);  // with its guard pages
  munmap(a.shadow, a.mapped);
}

bool IsDevice(const void* p) {
  Registry& r = Reg();
  std::lock_guard<std::mutex> lock(r.mu);
  return Find(r, reinterpret_cast<uintptr_t>(p)) != r.live.end();
}

Result<void*> ShadowBytes(const void* p, size_t bytes, const std::string& what) {
  if (bytes == 0) return static_cast<void*>(nullptr);  // touches nothing, like a kernel over no elements
  const auto a = reinterpret_cast<uintptr_t>(p);
  Registry& r = Reg();
  std::lock_guard<std::mutex> lock(r.mu);
  auto it = Find(r, a);
  if (it == r.live.end()) {
    return InvalidArgument(what + " (" + Hex(p) +
                           ") is not device memory (a host pointer passed to a GPU kernel, a freed buffer, or an index "
                           "outside its buffer)");
  }
  const size_t offset = a - it->first;
  if (bytes > it->second.bytes - offset) {
    return InvalidArgument(what + ": " + std::to_string(bytes) + " bytes at offset " + std::to_string(offset) +
                           " run past the end of its " + std::to_string(it->second.bytes) +
                           "-byte device allocation (an out-of-bounds access on the GPU)");
  }
  return static_cast<void*>(it->second.shadow + offset);
}

Status RequireHost(const void* p, const std::string& what) {
  if (!IsDevice(p)) return Status::Ok();
  return InvalidArgument(what + " (" + Hex(p) + ") is device memory where host memory is needed");
}

void* NewToken(Token kind) {
  // Non-canonical x86-64 addresses: never mapped (a dereference faults, as for an opaque CUDA handle)
  // and never handed out twice, so a destroyed stream cannot come back to life as a new one.
  static uintptr_t next = uintptr_t{0x4000} << 48;
  Registry& r = Reg();
  std::lock_guard<std::mutex> lock(r.mu);
  next += 16;
  void* t = reinterpret_cast<void*>(next);
  r.tokens[static_cast<int>(kind)].insert(t);
  return t;
}

void DeleteToken(Token kind, void* token) {
  Registry& r = Reg();
  std::lock_guard<std::mutex> lock(r.mu);
  r.tokens[static_cast<int>(kind)].erase(token);
}

bool IsLive(Token kind, const void* token) {
  Registry& r = Reg();
  std::lock_guard<std::mutex> lock(r.mu);
  return r.tokens[static_cast<int>(kind)].count(token) != 0;
}

Status CheckStream(CudaStream stream, const std::string& op) {
  if (stream == nullptr || IsLive(Token::kStream, stream)) return Status::Ok();
  return InvalidArgument(op + ": stream " + Hex(stream) + " is not a live Stream (destroyed, or not a stream)");
}

bool ClaimHandle(const void* token) {
  Registry& r = Reg();
  std::lock_guard<std::mutex> lock(r.mu);
  return r.busy_handles.insert(token).second;
}

void ReleaseHandle(const void* token) {
  Registry& r = Reg();
  std::lock_guard<std::mutex> lock(r.mu);
  r.busy_handles.erase(token);
}

void* AllocatePinned(size_t bytes) {
  constexpr size_t kPage = 4096;  // cudaMallocHost hands out page-aligned memory
  void* p = std::aligned_alloc(kPage, (bytes + kPage - 1) / kPage * kPage);
  if (p == nullptr) return nullptr;
  Registry& r = Reg();
  std::lock_guard<std::mutex> lock(r.mu);
  r.pinned[reinterpret_cast<uintptr_t>(p)] = bytes;
  return p;
}

void FreePinned(void* p) {
  if (p == nullptr) return;
  {
    Registry& r = Reg();
    std::lock_guard<std::mutex> lock(r.mu);
    auto it = r.pinned.find(reinterpret_cast<uintptr_t>(p));
    BRICK_ASSERT(it != r.pinned.end(), "FreePinned: not a live pinned allocation");
    const auto* begin = static_cast<const char*>(p);
    const char* end = begin + it->second;
    for (auto& [stream, copies] : r.pending) {
      std::erase_if(copies, [&](const PendingCopy& c) { return c.dst < end && c.dst + c.bytes.size() > begin; });
    }
    r.pinned.erase(it);
  }
  std::free(p);
}

bool IsPinned(const void* p, size_t bytes) {
  const auto a = reinterpret_cast<uintptr_t>(p);
  Registry& r = Reg();
  std::lock_guard<std::mutex> lock(r.mu);
  auto it = r.pinned.upper_bound(a);
  if (it == r.pinned.begin()) return false;
  --it;
  return a - it->first < it->second && bytes <= it->second - (a - it->first);
}

void DeferCopy(CudaStream stream, void* dst, const void* src_shadow, size_t bytes) {
  const auto* s = static_cast<const char*>(src_shadow);
  Registry& r = Reg();
  std::lock_guard<std::mutex> lock(r.mu);
  r.pending[stream].push_back({static_cast<char*>(dst), std::vector<char>(s, s + bytes)});
}

void CompletePending(CudaStream stream) {
  Registry& r = Reg();
  std::lock_guard<std::mutex> lock(r.mu);
  auto it = r.pending.find(stream);
  if (it == r.pending.end()) return;
  for (const PendingCopy& c : it->second) std::memcpy(c.dst, c.bytes.data(), c.bytes.size());
  r.pending.erase(it);
}

}  // namespace brickrt::cuda::emul
