// LM head: one GEMM/GEMV over the transposed weight.
#include "bricks/lm_head.h"

#include "bricks/norm.h"
#include "kernels/cpu/matmul.h"

namespace brickrt {

Result<LmHead> LmHead::FromData(const BrickData& brick, int64_t vocab, int64_t d_model) {
  BRICK_RETURN_IF_ERROR(ExpectTensor(brick, "weight", {vocab, d_model}));
  LmHead h;
  h.w_ = brick.Find("weight")->Transposed2D();
  return h;
}

void LmHead::Forward(const float* x, int64_t M, float* logits, ThreadPool* pool) const {
  kernels::Matmul(x, M, w_.dim(0), w_.data(), w_.dtype(), w_.dim(1), logits, pool);
}

}  // namespace brickrt
