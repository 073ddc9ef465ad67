// Expert bricks: one attention expert (its query and output maps over the layer's shared key/value
// memory) and one MLP expert. Weights stay in the checkpoint's [in, out] orientation and dtype,
// shared with the BrickData they came from (no copy).
#pragma once

#include <memory>

#include "core/brick_data.h"
#include "core/model_config.h"
#include "core/status.h"
#include "core/tensor.h"
#include "core/thread_pool.h"

namespace brickrt {

class AttentionExpert {
 public:
  static Result<std::shared_ptr<const AttentionExpert>> FromData(const BrickData& brick, const ModelConfig& cfg);

  const Tensor& wq() const { return wq_; }  // storage dtype [D, A]
  const Tensor& wo() const { return wo_; }  // storage dtype [A, D]

 private:
  Tensor wq_, wo_;
};

class MlpExpert {
 public:
  static Result<std::shared_ptr<const MlpExpert>> FromData(const BrickData& brick, const ModelConfig& cfg);

  // x F32 [M, D] -> y F32 [M, D] = gelu_tanh(x·W1)·W2. scratch F32 [M, F].
  void Forward(const float* x, int64_t M, float* y, float* scratch, ThreadPool* pool) const;

  const Tensor& w1() const { return w1_; }  // storage dtype [D, F]
  const Tensor& w2() const { return w2_; }  // storage dtype [F, D]

 private:
  Tensor w1_, w2_;
};

}  // namespace brickrt
