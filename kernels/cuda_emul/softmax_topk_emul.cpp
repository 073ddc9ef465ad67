// Emulated softmax_topk.h: the kernel is a line-for-line port of the CPU SoftmaxTopK (F32, k selection
// passes in the RanksAbove order), so the emulation calls it on the shadow: ids equal the CPU's.
#include <string>

#include "kernels/cpu/softmax_topk.h"
#include "kernels/cuda/softmax_topk.h"
#include "kernels/cuda_emul/shadow.h"

namespace brickrt::cuda {

Status SoftmaxTopKCuda(const float* logits, int64_t M, int64_t E, int k, float* gates, int32_t* ids,
                       CudaStream stream) {
  if (k < 1 || k > E) return InvalidArgument("SoftmaxTopKCuda: need 1 <= k <= E, got k=" + std::to_string(k));
  if (M == 0) return Status::Ok();
  BRICK_RETURN_IF_ERROR(emul::CheckStream(stream, "SoftmaxTopKCuda"));
  const size_t out = static_cast<size_t>(M * k);
  BRICK_ASSIGN_OR_RETURN(const float* l, emul::Shadow(logits, static_cast<size_t>(M * E), "SoftmaxTopKCuda: logits"));
  BRICK_ASSIGN_OR_RETURN(float* g, emul::Shadow(gates, out, "SoftmaxTopKCuda: gates"));
  BRICK_ASSIGN_OR_RETURN(int32_t* id, emul::Shadow(ids, out, "SoftmaxTopKCuda: ids"));
  kernels::SoftmaxTopK(l, M, E, k, g, id);
  return Status::Ok();
}

}  // namespace brickrt::cuda
