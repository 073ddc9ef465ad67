// LM head: one GEMM/GEMV over the transposed weight, then the loras' low-rank terms if any.
#include "bricks/lm_head.h"

#include <vector>

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

void LmHead::Forward(const float* x, int64_t M, float* logits, ThreadPool* pool) const {
  kernels::MatmulPacked(x, M, w_, logits, pool);
  if (lora_.empty()) return;
  // Session::Forward passes the head no workspace, hence a per-thread buffer (grown, never shrunk:
  // the same pattern as the row-major matmul's partial sums in kernels/cpu/matmul.cpp).
  thread_local std::vector<float> scratch;
  const auto need = static_cast<size_t>(M * MaxLoraRank(lora_));
  if (scratch.size() < need) scratch.resize(need);
  AddLoras(lora_, x, M, logits, scratch.data(), pool);
}

}  // namespace brickrt
