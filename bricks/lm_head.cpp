// LM head: one GEMM/GEMV over the transposed weight, then the loras' low-rank terms if any.
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

Result<LmHead> LmHead::WithLora(const BrickData& lora, double scale) const {
  BRICK_ASSIGN_OR_RETURN(auto delta, LoraDelta::FromData(lora, w_.K(), w_.N(), scale));
  LmHead h = *this;
  h.lora_.push_back(std::move(delta));
  return h;
}

void LmHead::Forward(const float* x, int64_t M, float* logits, float* lora_scratch, ThreadPool* pool) const {
  kernels::MatmulPacked(x, M, w_, logits, pool);
  AddLoras(lora_, x, M, logits, lora_scratch, pool);  // an empty loop without loras
}

}  // namespace brickrt
