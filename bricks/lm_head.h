// LM head brick: final hidden rows -> F32 logits over the (unpadded) vocabulary, plus any LoRA
// plugins on its weight (applied on the fly, so they work for a head tied to the embedding too).
#pragma once

#include "bricks/lora.h"
#include "core/brick_data.h"
#include "core/status.h"
#include "core/tensor.h"
#include "core/thread_pool.h"
#include "kernels/cpu/packed_matrix.h"

namespace brickrt {

class LmHead {
 public:
  // From an lm_head brick ("weight" [V, D]) or, for tied embeddings, the embedding brick.
  static Result<LmHead> FromData(const BrickData& brick, int64_t vocab, int64_t d_model);
  // A copy (sharing the packed weight) that also adds `lora` (target "lm_head.weight", a [r, D],
  // b [V, r]). Errors: those of LoraDelta::FromData.
  Result<LmHead> WithLora(const BrickData& lora, double scale) const;

  int64_t vocab() const { return w_.N(); }
  const LoraDeltas& lora() const { return lora_; }  // usually empty
  const kernels::PackedMatrix& w() const { return w_; }  // storage dtype, K = D, N = V
  // x F32 [M, D] -> logits F32 [M, V]. With loras, their x·Aᵀ rows go to a per-thread buffer that
  // grows to the largest M once and is then reused (the caller passes no workspace), so decode
  // does not allocate after its first step.
  // lora_scratch F32 [M, MaxLoraRank(lora())] (may be nullptr without loras).
  void Forward(const float* x, int64_t M, float* logits, float* lora_scratch, ThreadPool* pool) const;

 private:
  kernels::PackedMatrix w_;  // storage dtype, K = D, N = V (packed from nn.Linear's [V, D] once at load)
  LoraDeltas lora_;
};

}  // namespace brickrt
