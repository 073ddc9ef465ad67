// Assembling split execution from a composition's `placement:` (issue #5): one RemoteExecutor per
// node the rules send MLP experts to, and the MlpPlacement a Session runs with.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "bricks/executor.h"
#include "bricks/model.h"
#include "core/status.h"
#include "registry/compose.h"

namespace brickrt {

// Calls of one node's executor under on_failure: local-fallback.
struct FallbackStats {
  int64_t remote = 0;  // calls the node answered
  int64_t local = 0;   // calls run on the local copies instead
};

// Owns the executors an MlpPlacement points at; keep it alive as long as sessions use `placement`.
struct SplitPlan {
  MlpPlacement placement;
  std::vector<std::unique_ptr<ExpertExecutor>> executors;
  std::vector<std::string> nodes;  // executor i runs on node nodes[i]
  // One per executor with on_failure: local-fallback (empty otherwise), updated as calls finish.
  std::vector<std::unique_ptr<FallbackStats>> fallback_stats;
};

// For a composition with a placement section, and the model loaded from it: every kept MLP expert
// whose first matching rule names a node runs there (rules apply to full and model-relative names,
// as Compose checked them); everything else stays local. Connects to each node (Hello/Welcome; the
// node must serve each expert with the digest the composition pins). on_failure "local-fallback"
// runs a failed call's experts on the local copies instead (the coordinator loaded them); "fail"
// makes a failed call fail the step. Errors: Unsupported for a rule that sends something other than
// MLP experts to a node (attention experts, routers, ... run locally for now), an expert that carries
// a LoRA (the node computes the base expert only), and on_failure "skip-expert" (not implemented
// yet); a node's Connect error otherwise (unreachable within timeout_ms, another protocol version,
// a brick it does not serve or serves with another digest). Without a placement: an empty plan.
Result<std::unique_ptr<SplitPlan>> PlanSplit(const Composition& c, std::shared_ptr<const Model> model);

}  // namespace brickrt
