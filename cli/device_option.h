// --device cpu|cuda:N, for the commands that run a model in this process (run, chat, eval, profile).
#pragma once

#include <memory>
#include <optional>

#include "cli/args.h"
#include "core/device_ref.h"
#include "core/status.h"
#include "node/split.h"

namespace brickrt::cli {

// Declares --device.
void AddDeviceOption(ArgParser& a);
// The device --device names (nullopt without the option); InvalidArgument for anything but cpu/cuda:N.
// WholeModelOn (node/split.h) turns it into the plan CreateSession takes.
Result<std::optional<DeviceRef>> ReadDeviceOption(const ArgParser& a);

}  // namespace brickrt::cli
