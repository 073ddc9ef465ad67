// Executor: where a layer's MLP experts run when they do not run in this process (DESIGN.md §1): a
// node over ZeroMQ (node/), or anything else that computes an expert's rows. The MLP block hands each
// executor every row routed to its experts in one call (one round trip per layer and executor per
// step), runs its local experts while the call is in flight, and combines all outputs in expert
// order, so the answer does not depend on where an expert ran.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/status.h"

namespace brickrt {

// The rows of one layer's experts that one executor runs. Views, valid until Finish returns.
struct ExpertCall {
  int64_t layer = 0;
  int64_t width = 0;                   // D: columns of rows and out
  std::span<const int64_t> experts;    // original expert ids (brick indices), ascending
  std::span<const int32_t> counts;     // rows per expert, each >= 1
  const float* rows = nullptr;         // F32 [Σ counts, D], expert-major, in the order of `experts`
  float* out = nullptr;                // F32 [Σ counts, D], written by the executor before Finish returns
};

class ExpertExecutor {
 public:
  virtual ~ExpertExecutor() = default;
  // Starts the call and returns without waiting for the result (a remote executor sends it). At
  // most one call is in flight per executor.
  virtual Status Start(const ExpertCall& call) = 0;
  // Waits for the started call: OK once call.out holds every row's output, or the error (a timeout, a
  // dead node, an error reply), after which call.out is unspecified. Must return within the
  // executor's own timeout; never called without a Start.
  virtual Status Finish() = 0;
  // Whether the executor takes calls now. The MLP block asks before it routes a layer: the experts of
  // an unavailable executor leave that layer's routing as if dropped (their logits leave the softmax,
  // the others are not renormalised), and when a call fails and its executor then says it is
  // unavailable, the block routes the layer again without them (on_failure: skip-expert). An
  // executor that fails its calls but stays available makes them fail the step. Default: always.
  virtual bool Available() { return true; }
  // Whether it applies the LoRA deltas attached to the experts it runs (an executor in this process,
  // on the model's own expert objects or their upload). A node computes base experts only: a placement
  // never sends it an expert carrying a LoRA. Default: no.
  virtual bool AppliesLoras() const { return false; }
};

// Which executor runs each MLP expert of each layer; empty layers (or a null placement) run locally.
// Owners index `executors`; kLocal runs in this process.
struct MlpPlacement {
  static constexpr int32_t kLocal = -1;
  // [layer][kept slot] -> executor index or kLocal. A layer's vector is empty or has one entry per
  // kept expert of that layer (Layer::mlp_ids order).
  std::vector<std::vector<int32_t>> owner;
  std::vector<ExpertExecutor*> executors;  // not owned; must outlive the sessions using them

  bool AnyRemote(int64_t layer) const;
};

}  // namespace brickrt
