// LM head: one GEMM/GEMV over the transposed weight.
#include "bricks/lm_head.h"

#include "bricks/norm.h"

namespace brickrt {

Result<LmHead> LmHead::FromData(const BrickData& brick, int64_t vocab, int64_t d_model) {
  BRICK_RETURN_IF_ERROR(ExpectTensor(brick, "weight", {vocab, d_model}));
  LmHead h;
  const Tensor& w = *brick.Find("weight");
  h.w_ = kernels::PackedMatrix::Pack(w.data(), w.dtype(), d_model, vocab, /*transposed=*/true);
  return h;
}

void LmHead::Forward(const float* x, int64_t M, float* logits, ThreadPool* pool) const {
  kernels::MatmulPacked(x, M, w_, logits, pool);
}

}  // namespace brickrt
