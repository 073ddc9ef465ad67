// PlanSplit: placement rules -> executors and MlpPlacement.
#include "node/split.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>

#include "bricks/blocks.h"
#include "core/glob.h"
#include "core/log.h"
#include "node/curve_keys.h"
#include "node/remote_executor.h"

namespace brickrt {
namespace {

bool Matches(const PlacementRule& r, const BrickRecord& b) {
  return GlobMatch(r.match, b.RelativeName()) || GlobMatch(r.match, b.name);
}

// The node a brick is placed on, or "local".
const std::string& PlaceOf(const PlacementSpec& p, const BrickRecord& b) {
  static const std::string kLocal = "local";
  for (const PlacementRule& r : p.rules)
    if (Matches(r, b)) return r.on;
  return kLocal;
}

// Runs a call on its remote executor; when that fails, on the coordinator's own copies of the
// experts (on_failure: local-fallback), warning once per failure streak. A node that never answered
// the Hello is asked again at most once per kReconnectEvery, so the split resumes when it comes up
// without every step paying a connect timeout. (After a call's timeout the executor reconnects by
// itself.)
class FallbackExecutor : public ExpertExecutor {
 public:
  static constexpr std::chrono::milliseconds kReconnectEvery{1000};

  FallbackExecutor(std::unique_ptr<RemoteExecutor> remote, bool connected, std::shared_ptr<const Model> model,
                   std::string node, FallbackStats* stats)
      : remote_(std::move(remote)),
        connected_(connected),
        model_(std::move(model)),
        node_(std::move(node)),
        stats_(stats) {}

  Status Start(const ExpertCall& call) override {
    call_ = call;
    const auto now = std::chrono::steady_clock::now();
    if (!connected_ && now - last_attempt_ >= kReconnectEvery) {
      last_attempt_ = now;
      connected_ = remote_->Connect().ok();
      if (connected_) log::Warn("node", "node '" + node_ + "' answers again; its experts run there");
    }
    remote_ok_ = connected_ && remote_->Start(call).ok();
    return Status::Ok();
  }
  Status Finish() override {
    if (remote_ok_) {
      Status st = remote_->Finish();
      if (st.ok()) {
        warned_ = false;
        ++stats_->remote;
        return st;
      }
      if (!warned_) log::Warn("node", st.message() + "; running its experts locally (on_failure: local-fallback)");
    } else if (!warned_) {
      log::Warn("node", "node '" + node_ + "' could not take layer " + std::to_string(call_.layer) +
                            "; running its experts locally (on_failure: local-fallback)");
    }
    warned_ = true;
    ++stats_->local;
    return RunLocally();
  }

 private:
  Status RunLocally() {
    const int64_t rows = *std::max_element(call_.counts.begin(), call_.counts.end());
    const auto need = static_cast<size_t>(rows * model_->config().ffd_hidden);
    if (mid_.size() < need) mid_.resize(need);  // grows on failures only
    return RunExpertCallLocally(model_->layers()[static_cast<size_t>(call_.layer)], call_, mid_.data());
  }

  std::unique_ptr<RemoteExecutor> remote_;
  bool connected_ = false;
  std::chrono::steady_clock::time_point last_attempt_ = std::chrono::steady_clock::now();
  std::shared_ptr<const Model> model_;
  std::string node_;
  FallbackStats* stats_;  // owned by the SplitPlan
  ExpertCall call_;
  bool remote_ok_ = false, warned_ = false;
  std::vector<float> mid_;
};

}  // namespace

Result<std::unique_ptr<SplitPlan>> PlanSplit(const Composition& c, std::shared_ptr<const Model> model) {
  auto plan = std::make_unique<SplitPlan>();
  if (!c.placement) return plan;
  const PlacementSpec& p = *c.placement;
  if (p.on_failure == "skip-expert") {
    return Unsupported(c.source_path +
                       ": placement.on_failure: skip-expert is not implemented yet; use fail or "
                       "local-fallback");
  }
  // Targets of loras: the node computes base experts only.
  std::map<std::string, std::string> lora_on;  // target brick (relative) -> lora ref
  for (const PluginPlan& plugin : c.plugins) {
    for (const BrickRecord& b : plugin.bricks) {
      const std::string t = b.RelativeName();
      lora_on.emplace(t.substr(0, t.rfind('.')), b.Ref());
    }
  }
  std::map<std::string, std::vector<wire::BrickInfo>> per_node;
  for (const BrickRecord& b : c.bricks) {
    const std::string& place = PlaceOf(p, b);
    if (place == "local") continue;
    if (b.kind != BrickKind::kMlpExpert) {
      return Unsupported(c.source_path + ": placement: " + b.Ref() + " (" + BrickKindName(b.kind) + ") is placed on '" +
                         place + "'; only MLP experts run on nodes so far (match them with a glob like L*.mlp.E*)");
    }
    if (const auto lora = lora_on.find(b.RelativeName()); lora != lora_on.end()) {
      return Unsupported(c.source_path + ": placement: " + b.Ref() + " carries lora " + lora->second +
                         ", which node '" + place + "' would not apply; place it on local");
    }
    per_node[place].push_back(
        {b.name, b.digest, wire::ExpertKind::kMlp, static_cast<uint32_t>(b.layer), static_cast<uint32_t>(b.index)});
  }
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
    if (!st.ok() && p.on_failure != "local-fallback") return st.WithContext(c.source_path + ": placement");
    if (!st.ok())
      log::Warn("node", st.message() + "; its experts run locally until it answers (on_failure: local-fallback)");
    index_of[node.name] = static_cast<int32_t>(plan->executors.size());
    plan->nodes.push_back(node.name);
    if (p.on_failure == "local-fallback") {
      plan->fallback_stats.push_back(std::make_unique<FallbackStats>());
      plan->executors.push_back(std::make_unique<FallbackExecutor>(std::move(ex), st.ok(), model, node.name,
                                                                   plan->fallback_stats.back().get()));
    } else {
      plan->executors.push_back(std::move(ex));
    }
  }
  for (const auto& e : plan->executors) plan->placement.executors.push_back(e.get());
  // Owners per layer, in the model's kept-slot order.
  plan->placement.owner.resize(model->layers().size());
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
  return plan;
}

}  // namespace brickrt
