// LoRA plugin bricks: a low-rank delta ΔW = alpha / r · B·A on one projection of another brick, either
// applied on the fly next to the untouched base weights (LoraDelta) or folded into a new version of
// the target brick (MergeLora). A lora brick holds "a" [r, in], "b" [out, r] (PEFT orientation,
// F32/F16/BF16) and "alpha" [1]; its target names the projection (core/lora_target.h).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/brick_data.h"
#include "core/lora_target.h"  // LoraTarget, ParseLoraTarget, LoraTargetOf: the target grammar
#include "core/model_config.h"
#include "core/status.h"
#include "core/thread_pool.h"
#include "kernels/cpu/packed_matrix.h"

namespace brickrt {

// One lora on one projection, ready to run: y += multiplier · (x·Aᵀ)·Bᵀ, multiplier = scale·alpha/r.
// Immutable; shared by the experts that hold it.
class LoraDelta {
 public:
  // Validates kind, tensors and shapes against the projection's in/out features (a [r, in],
  // b [out, r], r >= 1, alpha one finite value, scale finite) and packs A and B. Errors:
  // InvalidArgument/NotFound, one line naming the lora's target and the expected vs found shape.
  static Result<std::shared_ptr<const LoraDelta>> FromData(const BrickData& lora, int64_t in, int64_t out,
                                                           double scale);

  int64_t rank() const { return a_.N(); }
  int64_t in() const { return a_.K(); }
  int64_t out() const { return b_.N(); }
  double multiplier() const { return multiplier_; }
  // The packed factors, for uploading them elsewhere (a GPU): Aᵀ (storage dtype, K = in, N = r) and
  // Bᵀ (F32, K = r, N = out), so y += multiplier · (x·a())·b().
  const kernels::PackedMatrix& a() const { return a_; }
  const kernels::PackedMatrix& b() const { return b_; }
  // Bytes one use streams: A's packed panels (the columns past r are zero padding a GEMV still reads)
  // and B widened to F32.
  int64_t bytes() const { return static_cast<int64_t>(a_.bytes() + b_.bytes()); }

  // y F32 [M, out] += multiplier · (x F32 [M, in] · Aᵀ) · Bᵀ. scratch F32 [M, rank()] is overwritten.
  // Does not allocate; splits over `pool` (nullptr: calling thread only).
  void AddTo(const float* x, int64_t M, float* y, float* scratch, ThreadPool* pool) const;

 private:
  kernels::PackedMatrix a_;  // storage dtype, K = in, N = r (packed from A [r, in]: x·Aᵀ)
  kernels::PackedMatrix b_;  // F32, K = r, N = out (packed from B [out, r]); F32 panels are in column
                             // order, which AddTo's accumulating loop relies on
  float multiplier_ = 0;
};

// The loras on one projection: usually none, and then running them is an empty loop. Several sum
// (each is an independent additive delta, so the order does not matter beyond F32 rounding).
using LoraDeltas = std::vector<std::shared_ptr<const LoraDelta>>;

// y += Σ deltas; scratch F32 [M, MaxLoraRank(deltas)] (may be nullptr when deltas is empty).
inline void AddLoras(const LoraDeltas& deltas, const float* x, int64_t M, float* y, float* scratch, ThreadPool* pool) {
  for (const auto& d : deltas) d->AddTo(x, M, y, scratch, pool);
}
int64_t MaxLoraRank(const LoraDeltas& deltas);
int64_t LoraBytes(const LoraDeltas& deltas);

// A lora brick to apply on the fly when a model is built (Model::Build), with its user scale.
struct LoraAttachment {
  BrickData brick;
  double scale = 1.0;
};

// A copy of `target` whose projection tensor is W + scale·alpha/r·ΔW in W's own orientation (expert
// tensors are [in, out] and take (B·A)ᵀ; the lm head's [out, in] takes B·A), computed in double and
// rounded once to W's dtype (round to nearest even); its other tensors share storage with target's.
// Errors: InvalidArgument when lora is not a lora, targets another brick or tensor, has the wrong
// shapes, or targets the lm head of a model whose head is tied to the embedding (merging would change
// the token embeddings as well; attach such a lora on the fly instead).
Result<BrickData> MergeLora(const BrickData& target, const BrickData& lora, double scale);

// Whether `lora` may be merged into a model with config cfg. Refuses the lm head of a model whose head
// is tied to the embedding: its lm_head brick shares the embedding's storage (so MergeLora cannot tell
// it from an untied head), a checkpoint export omits a tied head, and a merge must not change the
// token embeddings either. Errors: InvalidArgument naming the lora and saying to attach it on the fly.
Status CheckMergeable(const BrickData& lora, const ModelConfig& cfg);

}  // namespace brickrt
