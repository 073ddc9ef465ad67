// LM head brick: final hidden rows -> F32 logits over the (unpadded) vocabulary.
#pragma once

#include "core/brick_data.h"
#include "core/status.h"
#include "core/tensor.h"
#include "core/thread_pool.h"

namespace brickrt {

class LmHead {
 public:
  // From an lm_head brick ("weight" [V, D]) or, for tied embeddings, the embedding brick.
  static Result<LmHead> FromData(const BrickData& brick, int64_t vocab, int64_t d_model);

  int64_t vocab() const { return w_.dim(1); }
  // x F32 [M, D] -> logits F32 [M, V].
  void Forward(const float* x, int64_t M, float* logits, ThreadPool* pool) const;

 private:
  Tensor w_;  // storage dtype [D, V] (transposed from nn.Linear's [V, D] once at load)
};

}  // namespace brickrt
