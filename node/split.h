// Assembling split execution from a composition's `placement:` (issue #5): one RemoteExecutor per
// node the rules send MLP experts to, and the MlpPlacement a Session runs with.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "bricks/executor.h"
#include "bricks/model.h"
#include "core/status.h"
#include "node/failover.h"
#include "registry/compose.h"

namespace brickrt {

// Owns the executors an MlpPlacement points at; keep it alive as long as sessions use `placement`.
struct SplitPlan {
  MlpPlacement placement;
  std::vector<std::unique_ptr<ExpertExecutor>> executors;
  std::vector<std::string> nodes;  // executor i runs on node nodes[i]
  // One per executor under on_failure local-fallback or skip-expert (empty under fail), updated as
  // calls finish.
  std::vector<std::unique_ptr<NodeCallStats>> node_stats;
};

// For a composition with a placement section, and the model loaded from it: every kept MLP expert
// whose first matching rule names a node runs there (rules apply to full and model-relative names,
// as Compose checked them); everything else stays local. Connects to each node (Hello/Welcome; the
// node must serve each expert with the digest the composition pins). on_failure (node/failover.h):
// "fail" makes a failed call fail the step, and a node that does not answer the Hello fails the plan;
// "local-fallback" runs a failed call's experts on the local copies (the coordinator loaded them);
// "skip-expert" takes an unreachable node's experts out of the routing (warning once, and up front
// for layers that would keep fewer than top_k experts). Under both, a node down at the start only
// warns, and is asked again at most once a second. Errors: Unsupported for a rule that sends
// something other than MLP experts to a node (attention experts, routers, ... run locally for now)
// and an expert that carries a LoRA (the node computes the base expert only); under "fail", a node's
// Connect error (unreachable within timeout_ms, another protocol version, a brick it does not serve
// or serves with another digest). Without a placement: an empty plan.
Result<std::unique_ptr<SplitPlan>> PlanSplit(const Composition& c, std::shared_ptr<const Model> model);

}  // namespace brickrt
