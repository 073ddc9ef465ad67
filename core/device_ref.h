// Where a brick computes inside this process: the CPU or one CUDA GPU ("cpu", "cuda:0", "cuda:1", ...),
// as written in a spec's `placement:` (issue #8). Remote nodes are named separately (PlacementSpec).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace brickrt {

struct DeviceRef {
  enum class Kind { kCpu, kCuda } kind = Kind::kCpu;
  int index = 0;  // the CUDA device ordinal; 0 for the CPU

  static constexpr int kMaxCudaDevices = 64;

  bool is_cuda() const { return kind == Kind::kCuda; }
  std::string ToString() const;  // "cpu" or "cuda:N"
  friend bool operator==(const DeviceRef&, const DeviceRef&) = default;
};

// "cpu" or "cuda:N" (N a decimal ordinal below kMaxCudaDevices, no sign or leading zeros, "cuda"
// alone meaning cuda:0); nullopt for anything else.
std::optional<DeviceRef> ParseDeviceRef(std::string_view text);

// Whether `name` reads as a device ("cpu", "cuda", or "cuda:" followed by anything): such names are
// reserved, so a node cannot be called that.
bool LooksLikeDevice(std::string_view name);

}  // namespace brickrt
