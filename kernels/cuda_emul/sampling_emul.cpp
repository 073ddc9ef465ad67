// Emulated sampling.h: greedy argmax as the CPU Sampler scans at temperature 0 (from id 0, moving on a
// strict `>`): the lowest id among equal maxima, NaN never chosen unless logits[0] is NaN (then 0).
#include "kernels/cuda/sampling.h"
#include "kernels/cuda_emul/shadow.h"

namespace brickrt::cuda {

Status ArgmaxCuda(const float* logits, int64_t M, int64_t V, int32_t* ids, CudaStream stream) {
  if (V < 1) return InvalidArgument("ArgmaxCuda: empty vocabulary");
  if (M == 0) return Status::Ok();
  BRICK_RETURN_IF_ERROR(emul::CheckStream(stream, "ArgmaxCuda"));
  BRICK_ASSIGN_OR_RETURN(const float* l, emul::Shadow(logits, static_cast<size_t>(M * V), "ArgmaxCuda: logits"));
  BRICK_ASSIGN_OR_RETURN(int32_t* id, emul::Shadow(ids, static_cast<size_t>(M), "ArgmaxCuda: ids"));
  for (int64_t m = 0; m < M; ++m) {
    const float* r = l + m * V;
    int64_t best = 0;
    for (int64_t i = 1; i < V; ++i)
      if (r[i] > r[best]) best = i;
    id[m] = static_cast<int32_t>(best);
  }
  return Status::Ok();
}

}  // namespace brickrt::cuda
