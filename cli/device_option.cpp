// --device: parsing and the whole-model plan.
#include "cli/device_option.h"

namespace brickrt::cli {

void AddDeviceOption(ArgParser& a) {
  a.Option("device", "DEV", "cpu or cuda:N: run the model there (a spec's placement.device; default cpu)");
}

Result<std::optional<DeviceRef>> ReadDeviceOption(const ArgParser& a) {
  if (!a.Has("device")) return std::optional<DeviceRef>();
  const std::optional<DeviceRef> d = ParseDeviceRef(a.Get("device"));
  if (!d)
    return InvalidArgument("--device must be cpu or cuda:N (a GPU of this machine), not '" + a.Get("device") + "'");
  return d;
}

}  // namespace brickrt::cli
