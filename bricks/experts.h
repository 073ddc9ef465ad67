// Expert bricks: one attention expert (its query and output maps over the layer's shared key/value
// memory) and one MLP expert. Weights keep the checkpoint's dtype and are repacked once at load into
// the matmul kernels' column panels, so decode streams each expert's bytes exactly once. LoRA plugins
// ride along as a list per projection (empty for a plain expert, whose forward is unchanged).
#pragma once

#include <algorithm>
#include <memory>
#include <string>

#include "bricks/lora.h"
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
  // A copy of this expert (sharing its packed weights) that also adds `lora` on projection `tensor`
  // ("wq" or "wo"); loras already on it stay, and several on one projection sum. Errors: those of
  // LoraDelta::FromData, or InvalidArgument for another tensor name.
  Result<std::shared_ptr<const AttentionExpert>> WithLora(const std::string& tensor, const BrickData& lora,
                                                          double scale) const;

  const kernels::PackedMatrix& wq() const { return wq_; }  // storage dtype, K = D, N = A
  const kernels::PackedMatrix& wo() const { return wo_; }  // storage dtype, K = A, N = D
  const LoraDeltas& wq_lora() const { return wq_lora_; }   // usually empty
  const LoraDeltas& wo_lora() const { return wo_lora_; }
  // Largest rank among its loras (0 without): the scratch columns AddLoras needs per row.
  int64_t lora_rank() const { return std::max(MaxLoraRank(wq_lora_), MaxLoraRank(wo_lora_)); }
  int64_t lora_bytes() const { return LoraBytes(wq_lora_) + LoraBytes(wo_lora_); }

 private:
  kernels::PackedMatrix wq_, wo_;
  LoraDeltas wq_lora_, wo_lora_;
};

class MlpExpert {
 public:
  static Result<std::shared_ptr<const MlpExpert>> FromData(const BrickData& brick, const ModelConfig& cfg);
  // As AttentionExpert::WithLora, for projections "w1" and "w2".
  Result<std::shared_ptr<const MlpExpert>> WithLora(const std::string& tensor, const BrickData& lora,
                                                    double scale) const;

  // x F32 [M, D] -> y F32 [M, D] = gelu_tanh(x·W1 + Δ1(x))·W2 + Δ2(...), Δ the loras (none usually).
  // scratch F32 [M, F]; lora_scratch F32 [M, lora_rank()] (may be nullptr when lora_rank() is 0).
  void Forward(const float* x, int64_t M, float* y, float* scratch, float* lora_scratch, ThreadPool* pool) const;

  const kernels::PackedMatrix& w1() const { return w1_; }  // storage dtype, K = D, N = F
  const kernels::PackedMatrix& w2() const { return w2_; }  // storage dtype, K = F, N = D
  const LoraDeltas& w1_lora() const { return w1_lora_; }   // usually empty
  const LoraDeltas& w2_lora() const { return w2_lora_; }
  int64_t lora_rank() const { return std::max(MaxLoraRank(w1_lora_), MaxLoraRank(w2_lora_)); }
  int64_t lora_bytes() const { return LoraBytes(w1_lora_) + LoraBytes(w2_lora_); }

 private:
  kernels::PackedMatrix w1_, w2_;
  LoraDeltas w1_lora_, w2_lora_;
};

}  // namespace brickrt
