// Router selection on the GPU (like kernels/cpu/softmax_topk.h): softmax over all E experts, then the
// k largest in descending order, ties to the lower expert index, NaN ranked below −inf; gates not
// renormalised (spec §2.3, G3).
#pragma once

#include <cstdint>

#include "core/status.h"
#include "kernels/cuda/memory.h"

namespace brickrt::cuda {

// logits F32 [M, E] -> gates F32 [M, k], ids int32 [M, k], all device. REQUIRES: 1 <= k <= E
// (InvalidArgument otherwise). One thread per row running the CPU F32 algorithm (k selection passes
// over E in the same total order), so ids equal SoftmaxTopK's exactly. Enqueued on `stream`.
Status SoftmaxTopKCuda(const float* logits, int64_t M, int64_t E, int k, float* gates, int32_t* ids,
                       CudaStream stream);

}  // namespace brickrt::cuda
