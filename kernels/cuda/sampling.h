// Next-token choice on the GPU: greedy argmax only, with the CPU Sampler's rule. Temperature, top-k
// and top-p sampling stay on the CPU (bricks/sampler.h): they need the seeded, platform-independent
// generator and a sort of the vocabulary, and cost little next to copying one logits row back.
#pragma once

#include <cstdint>

#include "core/status.h"
#include "kernels/cuda/memory.h"

namespace brickrt::cuda {

// logits F32 [M, V] -> ids int32 [M], device. For each row, the id Sampler::Sample returns at
// temperature 0: the lowest id among the equal maxima, NaN never chosen unless logits[0] is NaN (the
// CPU scan starts from id 0 and only moves on a strict `>`), in which case 0. REQUIRES: V >= 1.
// One block per row. Enqueued on `stream`.
Status ArgmaxCuda(const float* logits, int64_t M, int64_t V, int32_t* ids, CudaStream stream);

}  // namespace brickrt::cuda
