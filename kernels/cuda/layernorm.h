// LayerNorm on the GPU (PyTorch semantics, like kernels/cpu/layernorm.h): F32 activations, weight and
// bias in their storage dtype (uploaded as they are in the checkpoint, widened in the kernel).
#pragma once

#include <cstdint>

#include "core/dtype.h"
#include "core/status.h"
#include "kernels/cuda/memory.h"

namespace brickrt::cuda {

// x F32 [M, D] -> y F32 [M, D] (device); w, b `wt` [D] (device). y may alias x. One block per row,
// two passes (mean, then squared deviations) in F32. Enqueued on `stream`; allocates nothing.
Status LayerNormCuda(const float* x, int64_t M, int64_t D, const void* w, const void* b, DType wt, float eps, float* y,
                     CudaStream stream);

}  // namespace brickrt::cuda
