// LM head brick: final hidden rows -> F32 logits over the (unpadded) vocabulary.
#pragma once

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

  int64_t vocab() const { return w_.N(); }
  // x F32 [M, D] -> logits F32 [M, V].
  void Forward(const float* x, int64_t M, float* logits, ThreadPool* pool) const;

 private:
  kernels::PackedMatrix w_;  // storage dtype, K = D, N = V (packed from nn.Linear's [V, D] once at load)
};

}  // namespace brickrt
