// PlanSplit: placement rules -> the device the model runs on, executors and MlpPlacement.
#include "node/split.h"

#include <algorithm>
#include <filesystem>
#include <map>

#include "bricks/blocks.h"
#include "bricks/cpu_expert_executor.h"
#include "core/glob.h"
#include "core/log.h"
#include "node/brick_info.h"
#include "node/curve_keys.h"
#include "node/failover.h"
#include "node/remote_executor.h"
#if BRICK_HAVE_CUDA
#include "bricks/cuda/cuda_expert_executor.h"
#endif

namespace brickrt {
namespace {

bool Matches(const PlacementRule& r, const BrickRecord& b) {
  return GlobMatch(r.match, b.RelativeName()) || GlobMatch(r.match, b.name);
}

// Where a brick is placed: a node's name or a device of this process ("cpu", "cuda:N"); `local` and
// bricks no rule matches go to placement.device.
std::string PlaceOf(const PlacementSpec& p, const BrickRecord& b) {
  for (const PlacementRule& r : p.rules)
    if (Matches(r, b)) return r.on == "local" ? p.device.ToString() : r.on;
  return p.device.ToString();
}

// The device every brick but the MLP experts is placed on: the embedding, norms, routers, attention
// experts and lm head run together, in this process, on one device.
Result<DeviceRef> TrunkDevice(const Composition& c) {
  const PlacementSpec& p = *c.placement;
  std::optional<DeviceRef> trunk;
  const BrickRecord* first = nullptr;
  for (const BrickRecord& b : c.bricks) {
    if (b.kind == BrickKind::kMlpExpert) continue;
    const std::string place = PlaceOf(p, b);
    const std::optional<DeviceRef> device = ParseDeviceRef(place);
    if (!device) {
      return Unsupported(c.source_path + ": placement: " + b.Ref() + " (" + BrickKindName(b.kind) + ") is placed on '" +
                         place + "'; only MLP experts run on nodes so far (match them with a glob like L*.mlp.E*)");
    }
    if (trunk && *trunk != *device) {
      return Unsupported(c.source_path + ": placement: " + b.Ref() + " is placed on " + place + " but " + first->Ref() +
                         " on " + trunk->ToString() +
                         "; the embedding, norms, routers, attention experts and lm head run on one device for now "
                         "(MLP experts may go to other devices and nodes)");
    }
    trunk = device;
    first = first != nullptr ? first : &b;
  }
  return trunk.value_or(p.device);
}

// The executor that runs `bricks` (MLP experts of `model`) on a device of this process other than the
// model's: the CPU beside a model on a GPU, or a GPU beside a model on the CPU.
Result<std::unique_ptr<ExpertExecutor>> DeviceExecutor(const Composition& c, std::shared_ptr<const Model> model,
                                                       const DeviceRef& device,
                                                       const std::vector<wire::BrickInfo>& bricks) {
  if (!device.is_cuda()) return std::unique_ptr<ExpertExecutor>(std::make_unique<CpuExpertExecutor>(std::move(model)));
#if BRICK_HAVE_CUDA
  std::vector<std::vector<int64_t>> slots(model->layers().size());
  for (const wire::BrickInfo& b : bricks) {
    const Layer& layer = model->layers()[b.layer];
    const auto slot = std::find(layer.mlp_ids.begin(), layer.mlp_ids.end(), static_cast<int64_t>(b.index));
    if (slot == layer.mlp_ids.end()) return Internal("placement names an expert the model does not keep: " + b.name);
    slots[b.layer].push_back(slot - layer.mlp_ids.begin());
  }
  auto ex = CudaExpertExecutor::Create(std::move(model), slots, device.index);
  if (!ex.ok()) return ex.status().WithContext(c.source_path + ": placement");
  return std::unique_ptr<ExpertExecutor>(std::move(ex).value());
#else
  (void)model, (void)bricks;
  return Unsupported(c.source_path + ": placement: MLP experts are placed on " + device.ToString() +
                     ", but this brick was built without CUDA (configure with -DBRICK_CUDA=ON and nvcc installed)");
#endif
}

// skip-expert routes a layer among the experts left while nodes are down; say up front which layers
// would then keep fewer than top-k (and so compute less than any submodel could).
void WarnThinLayers(const Composition& c, const Model& model, const MlpPlacement& placement) {
  const int k = model.config().k_mlp;
  std::string thin;
  for (size_t l = 0; l < placement.owner.size(); ++l) {
    const auto& owner = placement.owner[l];
    const auto local = std::count(owner.begin(), owner.end(), MlpPlacement::kLocal);
    if (!owner.empty() && local < k)
      thin += (thin.empty() ? "" : ", ") + std::to_string(l) + " (" + std::to_string(local) + ")";
  }
  if (thin.empty()) return;
  log::Warn("node", c.source_path + ": placement.on_failure: skip-expert: with every node down, layers " + thin +
                        " keep fewer local MLP experts than top_k=" + std::to_string(k) +
                        " and route among those left (none: the layer's MLP adds nothing)");
}

// A placement resolved brick by brick: the trunk's device and the MLP experts placed elsewhere, by node
// and by device (canonical names: "cuda" and "cuda:0" are one GPU, one executor).
struct Placed {
  DeviceRef device;
  std::map<std::string, std::vector<wire::BrickInfo>> per_node, per_device;
};

Result<Placed> Place(const Composition& c) {
  const PlacementSpec& p = *c.placement;
  Placed out;
  BRICK_ASSIGN_OR_RETURN(out.device, TrunkDevice(c));
  // Targets of loras: a node computes base experts only.
  std::map<std::string, std::string> lora_on;  // target brick (relative) -> lora ref
  for (const PluginPlan& plugin : c.plugins) {
    for (const BrickRecord& b : plugin.bricks) {
      const std::string t = b.RelativeName();
      lora_on.emplace(t.substr(0, t.rfind('.')), b.Ref());
    }
  }
  for (const BrickRecord& b : c.bricks) {
    if (b.kind != BrickKind::kMlpExpert) continue;
    const std::string place = PlaceOf(p, b);
    const std::optional<DeviceRef> device = ParseDeviceRef(place);
    if (device == out.device) continue;  // with the trunk: the block's own local path
    if (device && device->is_cuda() && out.device.is_cuda()) {
      return Unsupported(c.source_path + ": placement: " + b.Ref() + " is placed on " + place +
                         " while the rest of the model runs on " + out.device.ToString() +
                         "; a model uses one GPU for now (its MLP experts may go to the CPU or to nodes)");
    }
    // A node computes base experts only; this process's executors apply the expert's loras.
    if (const auto lora = lora_on.find(b.RelativeName()); !device && lora != lora_on.end()) {
      return Unsupported(c.source_path + ": placement: " + b.Ref() + " carries lora " + lora->second + ", which " +
                         place + " would not apply; place it on " + out.device.ToString());
    }
    if (device) {
      out.per_device[device->ToString()].push_back(MlpBrickInfo(b));
    } else {
      out.per_node[place].push_back(MlpBrickInfo(b));
    }
  }
  return out;
}

}  // namespace

std::unique_ptr<SplitPlan> WholeModelOn(const std::optional<DeviceRef>& device) {
  if (!device || !device->is_cuda()) return nullptr;
  auto plan = std::make_unique<SplitPlan>();
  plan->device = *device;
  return plan;
}

Result<PlacementSummary> SummarizePlacement(const Composition& c) {
  PlacementSummary summary;
  if (!c.placement) return summary;
  BRICK_ASSIGN_OR_RETURN(const Placed placed, Place(c));
  summary.device = placed.device;
  for (const auto* places : {&placed.per_device, &placed.per_node})
    for (const auto& [name, bricks] : *places)
      summary.elsewhere.emplace_back(name, static_cast<int64_t>(bricks.size()));
  return summary;
}

Result<std::unique_ptr<SplitPlan>> PlanSplit(const Composition& c, std::shared_ptr<const Model> model) {
  auto plan = std::make_unique<SplitPlan>();
  if (!c.placement) return plan;
  const PlacementSpec& p = *c.placement;
  BRICK_ASSIGN_OR_RETURN(Placed placed, Place(c));
  plan->device = placed.device;
  auto& per_node = placed.per_node;
  auto& per_device = placed.per_device;
  std::map<std::string, int32_t> index_of;
  for (const NodeSpec& node : p.nodes) {
    const auto bricks = per_node.find(node.name);
    if (bricks == per_node.end()) continue;  // a node no kept expert goes to
    RemoteExecutorOptions o;
    o.endpoint = node.endpoint;
    o.timeout_ms = node.timeout_ms;
    o.node_name = node.name;
    o.bricks = bricks->second;
    if (!node.server_key.empty()) {  // CURVE: key files relative to the spec file
      const auto resolve = [&](const std::string& file) {
        const std::filesystem::path f(file);
        return f.is_absolute() ? file : (std::filesystem::path(c.source_path).parent_path() / f).string();
      };
      const std::string where = c.source_path + ": placement.nodes." + node.name;
      RemoteExecutorOptions::Curve keys;
      auto server_key = curve::ReadPublicKey(resolve(node.server_key));
      if (!server_key.ok()) return server_key.status().WithContext(where + ".server_key");
      keys.server_key = *server_key;
      auto secret = curve::ReadSecretKey(resolve(node.client_key));
      if (!secret.ok()) return secret.status().WithContext(where + ".client_key");
      keys.secret_key = *secret;
      auto pub = curve::PublicKeyOf(*secret);
      if (!pub.ok()) return pub.status().WithContext(where + ".client_key");
      keys.public_key = *pub;
      o.curve = std::move(keys);
    }
    BRICK_ASSIGN_OR_RETURN(std::unique_ptr<RemoteExecutor> ex, RemoteExecutor::Create(o));
    Status st = ex->Connect();
    if (!st.ok() && p.on_failure == "fail") return st.WithContext(c.source_path + ": placement");
    if (!st.ok()) {
      log::Warn("node",
                st.message() + (p.on_failure == "local-fallback"
                                    ? "; its experts run locally until it answers (on_failure: local-fallback)"
                                    : "; its experts leave the routing until it answers (on_failure: skip-expert)"));
    }
    index_of[node.name] = static_cast<int32_t>(plan->executors.size());
    plan->nodes.push_back(node.name);
    if (p.on_failure == "fail") {
      plan->executors.push_back(std::move(ex));
      continue;
    }
    plan->node_stats.push_back(std::make_unique<NodeCallStats>());
    NodeLink link(std::move(ex), st.ok(), node.name);
    if (p.on_failure == "local-fallback") {
      plan->executors.push_back(
          std::make_unique<FallbackExecutor>(std::move(link), model, plan->node_stats.back().get()));
    } else {
      plan->executors.push_back(std::make_unique<SkipExecutor>(std::move(link), plan->node_stats.back().get()));
    }
  }
  // Devices of this process: a failed call there fails the step whatever on_failure says (a device
  // error is not a peer that may come back).
  for (const auto& [name, bricks] : per_device) {
    BRICK_ASSIGN_OR_RETURN(std::unique_ptr<ExpertExecutor> ex, DeviceExecutor(c, model, *ParseDeviceRef(name), bricks));
    index_of[name] = static_cast<int32_t>(plan->executors.size());
    plan->nodes.push_back(name);
    plan->executors.push_back(std::move(ex));
  }
  for (const auto& e : plan->executors) plan->placement.executors.push_back(e.get());
  // Owners per layer, in the model's kept-slot order.
  plan->placement.owner.resize(model->layers().size());
  per_node.merge(per_device);
  for (const auto& [node, bricks] : per_node) {
    for (const wire::BrickInfo& b : bricks) {
      const Layer& layer = model->layers()[b.layer];
      auto& owner = plan->placement.owner[b.layer];
      if (owner.empty()) owner.assign(layer.mlp.size(), MlpPlacement::kLocal);
      const auto slot = std::find(layer.mlp_ids.begin(), layer.mlp_ids.end(), static_cast<int64_t>(b.index));
      if (slot == layer.mlp_ids.end()) return Internal("placement names an expert the model does not keep: " + b.name);
      owner[static_cast<size_t>(slot - layer.mlp_ids.begin())] = index_of.at(node);
    }
  }
  if (p.on_failure == "skip-expert") WarnThinLayers(c, *model, plan->placement);
  return plan;
}

}  // namespace brickrt
