// Expert bricks: one attention expert (its query and output maps over the layer's shared key/value
// memory) and one MLP expert. Weights keep the checkpoint's dtype and are repacked once at load into
// the matmul kernels' column panels, so decode streams each expert's bytes exactly once.
#pragma once

#include <memory>

#include "core/brick_data.h"
#include "core/model_config.h"
#include "core/status.h"
#include "core/tensor.h"
#include "core/thread_pool.h"
#include "kernels/cpu/packed_matrix.h"

namespace brickrt {

class AttentionExpert {
 public:
  static Result<std::shared_ptr<const AttentionExpert>> FromData(const BrickData& brick, const ModelConfig& cfg);

  const kernels::PackedMatrix& wq() const { return wq_; }  // storage dtype, K = D, N = A
  const kernels::PackedMatrix& wo() const { return wo_; }  // storage dtype, K = A, N = D

 private:
  kernels::PackedMatrix wq_, wo_;
};

class MlpExpert {
 public:
  static Result<std::shared_ptr<const MlpExpert>> FromData(const BrickData& brick, const ModelConfig& cfg);

  // x F32 [M, D] -> y F32 [M, D] = gelu_tanh(x·W1)·W2. scratch F32 [M, F].
  void Forward(const float* x, int64_t M, float* y, float* scratch, ThreadPool* pool) const;

  const kernels::PackedMatrix& w1() const { return w1_; }  // storage dtype, K = D, N = F
  const kernels::PackedMatrix& w2() const { return w2_; }  // storage dtype, K = F, N = D

 private:
  kernels::PackedMatrix w1_, w2_;
};

}  // namespace brickrt
