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
Result<std::optional<DeviceRef>> ReadDeviceOption(const ArgParser& a);
// A plan that runs a whole model on `device` (for CreateSession, node/session_factory.h); null for the
// CPU or no device, which is the plain CPU session.
std::unique_ptr<SplitPlan> WholeModelOn(const std::optional<DeviceRef>& device);

}  // namespace brickrt::cli
