// Emulated device.h: one device, "the host", and the axpy self-test run through emulated memory.
#include <unistd.h>

#include <string>
#include <vector>

#include "kernels/cuda/device.h"
#include "kernels/cuda/memory.h"
#include "kernels/cuda_emul/shadow.h"

namespace brickrt::cuda {

std::vector<CudaDevice> ListDevices() {
  const size_t total = static_cast<size_t>(sysconf(_SC_PHYS_PAGES)) * static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return {CudaDevice{0, "host emulation of the CUDA kernels", 9, 0, total}};
}

Status UseDevice(int device) {
  if (device != 0) return Unavailable("no CUDA device " + std::to_string(device) + " (1 visible: the emulation)");
  return Status::Ok();
}

Status SelfTest(int device, int n) {
  BRICK_RETURN_IF_ERROR(UseDevice(device));
  std::vector<float> x(static_cast<size_t>(n)), y(static_cast<size_t>(n)), out(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    x[i] = static_cast<float>(i % 97) * 0.5f;
    y[i] = static_cast<float>(i % 13);
  }
  const size_t bytes = static_cast<size_t>(n) * sizeof(float);
  BRICK_ASSIGN_OR_RETURN(DeviceMemory dx, DeviceMemory::Allocate(bytes));
  BRICK_ASSIGN_OR_RETURN(DeviceMemory dy, DeviceMemory::Allocate(bytes));
  BRICK_RETURN_IF_ERROR(CopyToDevice(dx.data(), x.data(), bytes, nullptr));
  BRICK_RETURN_IF_ERROR(CopyToDevice(dy.data(), y.data(), bytes, nullptr));
  {  // the Axpy kernel
    BRICK_ASSIGN_OR_RETURN(const float* sx, emul::Shadow(dx.as<const float>(), x.size(), "SelfTest: x"));
    BRICK_ASSIGN_OR_RETURN(float* sy, emul::Shadow(dy.as<float>(), y.size(), "SelfTest: y"));
    for (int i = 0; i < n; ++i) sy[i] = 2.0f * sx[i] + sy[i];
  }
  BRICK_RETURN_IF_ERROR(CopyToHost(out.data(), dy.data(), bytes, nullptr));
  for (int i = 0; i < n; ++i) {
    if (out[i] != 2.0f * x[i] + y[i])
      return Internal("CUDA self-test: element " + std::to_string(i) + " is " + std::to_string(out[i]));
  }
  return Status::Ok();
}

}  // namespace brickrt::cuda
