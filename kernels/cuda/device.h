// CUDA device discovery and a self-test kernel: the first piece of the CUDA backend, so the build,
// the runtime library and (where a GPU exists) the device are exercised from day one.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "core/status.h"

namespace brickrt::cuda {

struct CudaDevice {
  int index = 0;
  std::string name;
  int cc_major = 0, cc_minor = 0;  // compute capability
  size_t total_bytes = 0;
};

// Devices visible to this process; empty (not an error) without a driver or a GPU.
std::vector<CudaDevice> ListDevices();

// Makes `device` the current device of the calling thread (cudaSetDevice): every later allocation,
// stream and launch of this thread goes to it. Unavailable when there is no such device.
Status UseDevice(int device);

// Runs y = a·x + y on `device` over n elements and checks every element against the host result.
// Unavailable when there is no such device; Internal with the CUDA error string on any failure.
Status SelfTest(int device, int n = 1 << 20);

}  // namespace brickrt::cuda
