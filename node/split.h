// Assembling split execution from a composition's `placement:` (issue #5): one RemoteExecutor per
// node the rules send MLP experts to, and the MlpPlacement a Session runs with.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "bricks/executor.h"
#include "bricks/model.h"
#include "core/device_ref.h"
#include "core/status.h"
#include "node/failover.h"
#include "registry/compose.h"

namespace brickrt {

// Owns the executors an MlpPlacement points at; keep it alive as long as sessions use `placement`.
struct SplitPlan {
  // The device this process runs the model on (the embedding, norms, routers, attention experts, lm
  // head and the MLP experts placed with them): cpu, or cuda:N for a model that runs whole on a GPU.
  DeviceRef device;
  MlpPlacement placement;
  // The nodes first, then this process's other devices that run MLP experts (a GPU beside a model on
  // the CPU, the CPU beside a model on a GPU).
  std::vector<std::unique_ptr<ExpertExecutor>> executors;
  std::vector<std::string> nodes;  // executor i runs on nodes[i]: a node's name, or a device ("cuda:0")
  // One per node executor (the first node_stats.size() executors) under on_failure local-fallback or
  // skip-expert (empty under fail), updated as calls finish.
  std::vector<std::unique_ptr<NodeCallStats>> node_stats;
};

// For a composition with a placement section, and the model loaded from it: every kept MLP expert
// whose first matching rule names a node runs there; one whose rule names another device of this
// process than the model's runs there through an executor: a GPU (cuda:N) beside a model on the CPU
// (CudaExpertExecutor, weights uploaded here, once), or the CPU beside a model on a GPU
// (CpuExpertExecutor). Rules apply to full and model-relative names, as Compose checked them.
// Everything else runs in this process on `device`: placement.device unless rules move the whole trunk
// (embedding, norms, routers, attention experts, lm head) to another device together. Errors:
// Unsupported for trunk bricks split over devices, for MLP experts on a second GPU, and for a GPU
// placement in a build without CUDA; a GPU's own errors (no such device, out of memory). Connects to each node
// (Hello/Welcome; the node must serve each expert with the digest the composition pins). on_failure (node/failover.h):
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

// Where a composition's bricks would run, resolved without connecting to a node or touching a device
// (brick compose): the device of the trunk and how many MLP experts go to each other place ("cpu",
// "cuda:N" or a node's name), devices first. Errors: PlanSplit's placement checks (a trunk split over
// devices, a second GPU, a LoRA-carrying expert sent away). No placement: the CPU, nothing elsewhere.
struct PlacementSummary {
  DeviceRef device;
  std::vector<std::pair<std::string, int64_t>> elsewhere;
};
Result<PlacementSummary> SummarizePlacement(const Composition& c);

// The plan of a whole model on `device` (for a model loaded without a spec, e.g. `--device cuda:0`):
// null for the CPU, which is the plain CPU session.
std::unique_ptr<SplitPlan> WholeModelOn(const std::optional<DeviceRef>& device);

}  // namespace brickrt
