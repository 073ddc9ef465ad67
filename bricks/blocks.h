// The two modular blocks of a ModuleFormer layer, run on all new rows of a step at once:
//   h += MoA(LN₁(h))   — mixture of stick-breaking attention experts over the shared K = V = LN₁ cache
//   h += MoE(LN₂(h))   — mixture of MLP experts
// Each routes every row, groups rows by expert, runs every expert once on its rows and combines the
// outputs with the (unrenormalised) gates.
#pragma once

#include <cstdint>

#include "bricks/executor.h"
#include "bricks/kv_cache.h"
#include "bricks/model.h"
#include "bricks/workspace.h"
#include "core/status.h"
#include "core/thread_pool.h"

namespace brickrt {

// Which sequence and absolute position each row of the step belongs to. Rows of one sequence are
// contiguous and in ascending position.
struct StepRows {
  int64_t n = 0;
  const int32_t* seq = nullptr;  // [n] index into the caches array
  const int64_t* pos = nullptr;  // [n]
};

// ws.hidden [n, D] is updated in place. Writes this layer's LN₁ rows into the caches at (seq, pos)
// before attending, since a token attends to itself.
void RunAttentionBlock(const Layer& layer, int64_t layer_index, const ModelConfig& cfg, const StepRows& rows,
                       KvCache* const* caches, Workspace& ws, ThreadPool* pool);

// Computes an executor's call with the layer's own MLP expert objects — what a node holding the same
// bricks computes; for a fallback to local copies, the CPU executor and test executors. mid: F32
// scratch of at least (largest count) × F floats. lora: F32 scratch of (largest count) × the layer's
// lora_rank floats to apply the experts' LoRA deltas, or nullptr. Errors: InvalidArgument for an expert
// the layer does not keep, or one carrying a LoRA without `lora` scratch (a node computes base experts
// only; placement refuses sending those).
Status RunExpertCallLocally(const Layer& layer, const ExpertCall& call, float* mid, float* lora = nullptr);

// placement: which executor runs each of the layer's MLP experts (nullptr or no remote owner in this
// layer: all local, the plain path). With remote owners, each executor gets one ExpertCall with all
// its rows, the local experts run meanwhile, and every output is combined in expert order once all
// are in, so the result equals all-local execution when the executors compute the same experts.
// Experts of an executor that is not Available() are left out of the routing (k shrinks to the
// experts left when fewer than k_mlp remain; ws.mlp_k says how many were routed); a failed call whose
// executor then says it is unavailable is routed again without it. Errors: the first executor error
// of a call whose executor stays available (every started call is finished first); ws.hidden is then
// unspecified for this step.
Status RunMlpBlock(const Layer& layer, int64_t layer_index, const ModelConfig& cfg, int64_t n, Workspace& ws,
                   ThreadPool* pool, const MlpPlacement* placement = nullptr);

}  // namespace brickrt
