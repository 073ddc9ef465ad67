// Placement validation for compositions: the placement itself runs with remote nodes (issue #5) and
// this process's devices (issue #8).
#include <map>

#include "core/device_ref.h"
#include "core/glob.h"
#include "registry/compose_internal.h"

namespace brickrt::compose_internal {
namespace {

Status Error(const Composition& c, size_t rule, const std::string& msg) {
  return InvalidArgument(c.source_path + ": placement.rules[" + std::to_string(rule) + "]: " + msg);
}

bool Matches(const PlacementRule& r, const BrickRecord& b) {
  return GlobMatch(r.match, b.RelativeName()) || GlobMatch(r.match, b.name);
}

}  // namespace

Status CheckPlacement(const Composition& c) {
  if (!c.placement) return Status::Ok();
  const std::vector<PlacementRule>& rules = c.placement->rules;
  // A private lora makes its target private in effect: the merged brick (or the lora computing beside
  // the target) runs wherever the target runs.
  std::map<std::string, const BrickRecord*> private_lora;  // target brick (relative name) -> a private lora
  for (const PluginPlan& p : c.plugins) {
    for (const BrickRecord& b : p.bricks) {
      const std::string target = b.RelativeName();
      if (b.visibility == Visibility::kPrivate) private_lora.emplace(target.substr(0, target.rfind('.')), &b);
    }
  }
  std::vector<bool> matched(rules.size(), false);
  for (const BrickRecord& b : c.bricks) {
    bool decided = false;
    for (size_t i = 0; i < rules.size(); ++i) {
      if (!Matches(rules[i], b)) continue;
      matched[i] = true;
      if (decided) continue;  // first match wins
      decided = true;
      // This process's CPU and GPUs are this device: private bricks may compute there.
      if (rules[i].on == "local" || ParseDeviceRef(rules[i].on)) continue;
      if (b.visibility == Visibility::kPrivate) {
        return Error(c, i, "private brick " + b.Ref() + " cannot be placed on node '" + rules[i].on +
                               "' (private bricks never leave this device); place it on local");
      }
      const auto lora = private_lora.find(b.RelativeName());
      if (lora != private_lora.end()) {
        return Error(c, i, "brick " + b.Ref() + " carries private lora " + lora->second->Ref() +
                               ", so it cannot be placed on node '" + rules[i].on +
                               "' (private bricks never leave this device); place it on local");
      }
    }
  }
  // Rules may also name lora bricks themselves (they follow their target; matching one is no typo).
  for (const PluginPlan& p : c.plugins)
    for (const BrickRecord& b : p.bricks)
      for (size_t i = 0; i < rules.size(); ++i) matched[i] = matched[i] || Matches(rules[i], b);
  for (size_t i = 0; i < rules.size(); ++i) {
    if (!matched[i]) {
      return Error(c, i,
                   "'" + rules[i].match + "' matches no brick of this submodel (names look like L0.mlp.E3, " +
                       "L0.attn.router, embed, lm_head, or the full " + c.base.name + "/L0.mlp.E3)");
    }
  }
  return Status::Ok();
}

}  // namespace brickrt::compose_internal
