// Device names of placement rules.
#include "core/device_ref.h"

namespace brickrt {

std::string DeviceRef::ToString() const { return is_cuda() ? "cuda:" + std::to_string(index) : "cpu"; }

std::optional<DeviceRef> ParseDeviceRef(std::string_view text) {
  if (text == "cpu") return DeviceRef{};
  if (text == "cuda") return DeviceRef{DeviceRef::Kind::kCuda, 0};
  constexpr std::string_view kCuda = "cuda:";
  if (!text.starts_with(kCuda)) return std::nullopt;
  const std::string_view digits = text.substr(kCuda.size());
  if (digits.empty() || digits.size() > 2 || (digits.size() > 1 && digits[0] == '0')) return std::nullopt;
  int index = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
    index = index * 10 + (c - '0');
  }
  if (index >= DeviceRef::kMaxCudaDevices) return std::nullopt;
  return DeviceRef{DeviceRef::Kind::kCuda, index};
}

bool LooksLikeDevice(std::string_view name) { return name == "cpu" || name == "cuda" || name.starts_with("cuda:"); }

}  // namespace brickrt
