// GELU on the GPU, in place over n F32 values, in the two forms ModuleFormer uses (like
// kernels/cpu/gelu.h): exact erf (routers) and the tanh approximation "gelu_new" (MLP experts).
#pragma once

#include <cstdint>

#include "core/status.h"
#include "kernels/cuda/memory.h"

namespace brickrt::cuda {

// x F32 [n] (device), in place. Enqueued on `stream`; allocates nothing.
Status GeluErfCuda(float* x, int64_t n, CudaStream stream);
Status GeluTanhCuda(float* x, int64_t n, CudaStream stream);

}  // namespace brickrt::cuda
