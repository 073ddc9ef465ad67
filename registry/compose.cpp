// Compose: spec + registry -> Composition. Expert indices in a spec are the base model's (brick
// names keep them), so a submodel of a submodel still speaks the original ids.
#include "registry/compose.h"

#include <algorithm>
#include <map>

#include "registry/compose_internal.h"

namespace brickrt {
namespace {

using compose_internal::CheckPlacement;
using compose_internal::CountCosts;

std::string RangeText(const std::pair<int64_t, int64_t>& r) {
  return r.first == r.second ? std::to_string(r.first) : std::to_string(r.first) + "-" + std::to_string(r.second);
}

class Composer {
 public:
  Composer(const Registry& reg, const SubmodelSpec& spec) : reg_(reg), spec_(spec) {}

  Result<Composition> Run() {
    c_.name = spec_.name;
    c_.source_path = spec_.source_path;
    BRICK_ASSIGN_OR_RETURN(c_.base, Resolve(spec_.model, "model"));
    if (c_.base.kind != ManifestKind::kModel) {
      return Error("model", "'" + spec_.model + "' is a plugin, not a model (attach it under `plugins:`)");
    }
    c_.config = c_.base.config;
    const ModelConfig& base = c_.base.config;
    for (auto* removed : {&c_.config.att_removed, &c_.config.mlp_removed})
      if (removed->empty()) removed->assign(static_cast<size_t>(base.n_layer), {});
    BRICK_RETURN_IF_ERROR(ApplySelection(spec_.attention, /*attention=*/true, "experts.attention"));
    BRICK_RETURN_IF_ERROR(ApplySelection(spec_.mlp, /*attention=*/false, "experts.mlp"));
    if (!c_.config.HasRemovals()) {  // keep a no-op spec's config identical to the base's
      c_.config.att_removed.clear();
      c_.config.mlp_removed.clear();
    }
    BRICK_RETURN_IF_ERROR(CheckTopK());
    BRICK_ASSIGN_OR_RETURN(base_all_, reg_.ManifestBricks(c_.base));
    KeepBricks(base_all_);
    InheritPlugins(base_all_);
    for (size_t i = 0; i < spec_.plugins.size(); ++i) BRICK_RETURN_IF_ERROR(AddPlugin(spec_.plugins[i], i));
    BRICK_RETURN_IF_ERROR(CheckDuplicateLoras());
    c_.placement = spec_.placement;
    BRICK_RETURN_IF_ERROR(CheckPlacement(c_));
    CountCosts(base_all_, &c_);
    return std::move(c_);
  }

 private:
  Status Error(const std::string& key, const std::string& msg) const {
    return InvalidArgument(spec_.source_path + ": " + key + ": " + msg);
  }

  Result<ManifestRecord> Resolve(const std::string& ref, const std::string& key) const {
    auto m = reg_.ResolveModel(ref);
    if (!m.ok()) return Status(m.status().code(), spec_.source_path + ": " + key + ": " + m.status().message());
    return m;
  }

  // Marks the experts `sel` removes in c_.config, checking every index against the base model.
  Status ApplySelection(const ExpertSelection& sel, bool attention, const std::string& key) {
    if (sel.mode == ExpertSelection::Mode::kAll) return Status::Ok();
    if (sel.mode == ExpertSelection::Mode::kProfile) return ApplyProfile(sel, attention, key + ".keep");
    const ModelConfig& base = c_.base.config;
    const std::string what = attention ? "attention" : "MLP";
    const std::string sub = key + (sel.mode == ExpertSelection::Mode::kDrop ? ".drop" : ".keep");
    auto& removed = attention ? c_.config.att_removed : c_.config.mlp_removed;
    for (const auto& [layers, experts] : sel.layers) {
      for (const auto& lr : layers.ranges) {
        if (lr.second >= base.n_layer) {
          return Error(sub, "layer " + RangeText(lr) + " is beyond the model (" + spec_.model + " has " +
                                std::to_string(base.n_layer) + " layers, 0-" + std::to_string(base.n_layer - 1) + ")");
        }
        for (int64_t l = lr.first; l <= lr.second; ++l) {
          const int64_t n = (attention ? base.n_att_experts : base.n_mlp_experts)[static_cast<size_t>(l)];
          for (const auto& er : experts.ranges) {
            if (er.second >= n) {
              return Error(sub, "expert " + RangeText(er) + " of layer " + std::to_string(l) + " is out of range (" +
                                    std::to_string(n) + " " + what + " experts, 0-" + std::to_string(n - 1) + ")");
            }
            for (int64_t e = er.first; e <= er.second; ++e) {
              if (base.IsRemoved(attention, l, e)) {
                return Error(sub, what + " expert " + std::to_string(e) + " of layer " + std::to_string(l) +
                                      " is already removed from " + c_.base.Ref());
              }
            }
          }
          std::vector<int64_t>& r = removed[static_cast<size_t>(l)];
          for (int64_t e = 0; e < n; ++e) {
            const bool listed = experts.Contains(e);
            const bool drop = sel.mode == ExpertSelection::Mode::kDrop ? listed : !listed;
            if (drop && !std::binary_search(r.begin(), r.end(), e))
              r.insert(std::upper_bound(r.begin(), r.end(), e), e);
          }
          if (static_cast<int64_t>(r.size()) == n)
            return Error(sub, "layer " + std::to_string(l) + " would keep no " + what + " expert");
        }
      }
    }
    return Status::Ok();
  }

  // keep: {profile, threshold}: the profile must be measured on this very manifest (its expert ids and
  // routing are those weights'); ExpertsUnderThreshold picks what goes.
  Status ApplyProfile(const ExpertSelection& sel, bool attention, const std::string& key) {
    auto prof = reg_.GetProfile(sel.profile);
    if (!prof.ok()) {
      return Status(prof.status().code(), spec_.source_path + ": " + key + ".profile: " + prof.status().message());
    }
    if (prof->manifest_id != c_.base.id) {
      return Error(key + ".profile", "profile " + prof->name + " was measured on " + prof->manifest + ", not on " +
                                         c_.base.Ref() + " (other weights or other experts); profile it first: brick "
                                         "profile " + c_.base.Ref() + " --data FILE --save NAME");
    }
    const int k = sel.top_k.value_or(attention ? c_.base.config.k_att : c_.base.config.k_mlp);
    auto cut = ExpertsUnderThreshold(*prof, c_.config, attention, sel.threshold, k);
    if (!cut.ok()) return Error(key, cut.status().message());
    auto& removed = attention ? c_.config.att_removed : c_.config.mlp_removed;
    for (size_t l = 0; l < cut->removed.size(); ++l) {
      std::vector<int64_t>& r = removed[l];
      r.insert(r.end(), cut->removed[l].begin(), cut->removed[l].end());
      std::sort(r.begin(), r.end());
      r.erase(std::unique(r.begin(), r.end()), r.end());
    }
    for (const std::string& n : cut->notes) c_.notes.push_back(std::string(attention ? "attention" : "mlp") + ": " + n);
    return Status::Ok();
  }

  Status CheckTopK() {
    ModelConfig& cfg = c_.config;
    if (spec_.attention.top_k) cfg.k_att = *spec_.attention.top_k;
    if (spec_.mlp.top_k) cfg.k_mlp = *spec_.mlp.top_k;
    for (int64_t l = 0; l < cfg.n_layer; ++l) {
      for (const bool att : {true, false}) {
        const int k = att ? cfg.k_att : cfg.k_mlp;
        const int64_t kept = cfg.KeptExperts(att, l);
        if (k > kept) {
          const bool from_spec = (att ? spec_.attention.top_k : spec_.mlp.top_k).has_value();
          return Error(std::string("experts.") + (att ? "attention" : "mlp") + (from_spec ? ".top_k" : ""),
                       std::string(from_spec ? "top_k " : "the model's top_k ") + std::to_string(k) +
                           " is larger than the " + std::to_string(kept) + " " + (att ? "attention" : "MLP") +
                           " experts layer " + std::to_string(l) + " keeps" +
                           (from_spec ? "" : "; set a smaller top_k"));
        }
      }
    }
    return Status::Ok();
  }

  bool Kept(const BrickRecord& b) const {
    if (b.kind == BrickKind::kAttnExpert) return !c_.config.IsRemoved(true, b.layer, b.index);
    if (b.kind == BrickKind::kMlpExpert) return !c_.config.IsRemoved(false, b.layer, b.index);
    return true;
  }

  void KeepBricks(const std::vector<BrickRecord>& base_bricks) {
    const ModelConfig& cfg = c_.config;
    for (int64_t l = 0; l < cfg.n_layer; ++l) {
      LayerPlan p;
      p.layer = l;
      p.att_kept = cfg.KeptExpertIds(true, l);
      p.mlp_kept = cfg.KeptExpertIds(false, l);
      p.att_total = cfg.n_att_experts[static_cast<size_t>(l)];
      p.mlp_total = cfg.n_mlp_experts[static_cast<size_t>(l)];
      c_.layers.push_back(std::move(p));
    }
    for (const BrickRecord& b : base_bricks) {
      if (b.kind == BrickKind::kLora || !Kept(b)) continue;  // loras: InheritPlugins
      c_.bricks.push_back(b);
      c_.bytes_to_load += b.bytes;
      if (b.layer >= 0 && b.layer < cfg.n_layer) c_.layers[static_cast<size_t>(b.layer)].bytes += b.bytes;
    }
  }

  // A base that is itself a saved submodel may attach loras on the fly (pinned with their scales):
  // they stay attached, one plan per scale, unless the spec removes their target.
  void InheritPlugins(const std::vector<BrickRecord>& base_bricks) {
    std::map<double, PluginPlan> by_scale;
    for (const BrickRecord& b : base_bricks) {
      if (b.kind != BrickKind::kLora) continue;
      const auto scale = c_.base.plugin_scales.find(b.id);
      PluginPlan& plan = by_scale[scale == c_.base.plugin_scales.end() ? 1.0 : scale->second];
      plan.plugin = c_.base;
      plan.inherited = true;
      plan.scale = scale == c_.base.plugin_scales.end() ? 1.0 : scale->second;
      const std::string target = b.RelativeName();
      const BrickRecord* t = FindTarget(target.substr(0, target.rfind('.')));
      if (t == nullptr || !Kept(*t)) {
        plan.skipped.push_back(target);
        continue;
      }
      c_.bytes_to_load += b.bytes;
      plan.bricks.push_back(b);
    }
    for (auto& [scale, plan] : by_scale) c_.plugins.push_back(std::move(plan));
  }

  // The base brick a lora targets, by model-relative name ("L3.mlp.E5"), among all base bricks.
  const BrickRecord* FindTarget(const std::string& rel) const {
    for (const BrickRecord& b : base_all_)
      if (b.RelativeName() == rel) return &b;
    return nullptr;
  }

  // A lora on an expert the base (a saved submodel) already removed.
  bool RemovedFromBase(const BrickRecord& lora) const {
    const std::string target = lora.RelativeName();
    const bool att = target.find(".attn.") != std::string::npos;
    const bool mlp = target.find(".mlp.") != std::string::npos;
    return (att || mlp) && c_.base.config.IsRemoved(att, lora.layer, lora.index);
  }

  // The imported model a manifest descends from (a submodel's base, its base, ...).
  Result<std::string> RootOf(const ManifestRecord& m) const {
    ManifestRecord cur = m;
    for (int depth = 0; !cur.base.empty(); ++depth) {
      if (depth > 64) return Corrupt("manifest " + m.Ref() + ": its chain of bases does not end");
      auto parent = reg_.ResolveModel(cur.base);
      if (!parent.ok()) {
        return Error("model", cur.Ref() + " was made from " + cur.base + ", which is no longer in the registry");
      }
      cur = std::move(parent).value();
    }
    return cur.Ref();
  }

  // A lora trained on other weights would silently compute something else: the plugin must be made
  // for the same imported model (the base, or a submodel of it, or the model the base came from).
  Status CheckSameRoot(const ManifestRecord& plugin, const std::string& key) const {
    BRICK_ASSIGN_OR_RETURN(std::string mine, RootOf(c_.base));
    auto made_for = reg_.ResolveModel(plugin.base);
    if (!made_for.ok()) {
      return Error(key, plugin.Ref() + " was made for " + plugin.base + ", which is no longer in the registry");
    }
    BRICK_ASSIGN_OR_RETURN(std::string theirs, RootOf(*made_for));
    if (mine != theirs) {
      return Error(key, plugin.Ref() + " was made for " + plugin.base + " (weights of " + theirs + "), not for " +
                            c_.base.Ref() + " (weights of " + mine + "); import the adapter again with --base " +
                            c_.base.Ref());
    }
    return Status::Ok();
  }

  // One lora brick attached twice (the same plugin listed twice, or again over an inherited one)
  // would be saved with one scale: ask for one entry with the summed scale instead.
  Status CheckDuplicateLoras() const {
    std::map<int64_t, size_t> seen;  // lora brick id -> plan index
    for (size_t p = 0; p < c_.plugins.size(); ++p) {
      for (const BrickRecord& b : c_.plugins[p].bricks) {
        const auto [it, fresh] = seen.emplace(b.id, p);
        if (!fresh) {
          return Error("plugins", "lora " + b.Ref() + " is attached twice (by " + c_.plugins[it->second].plugin.Ref() +
                                      " and " + c_.plugins[p].plugin.Ref() +
                                      "); attach a plugin once, with the scales summed");
        }
      }
    }
    return Status::Ok();
  }

  Status AddPlugin(const PluginSpec& ps, size_t i) {
    const std::string key = "plugins[" + std::to_string(i) + "].lora";
    auto found = reg_.ResolveModel(ps.lora_ref);
    if (!found.ok() && found.status().code() == StatusCode::kNotFound) {
      return Status(StatusCode::kNotFound, spec_.source_path + ": " + key + ": no plugin '" + ps.lora_ref +
                                               "' in registry " + reg_.path() + " (" + found.status().message() +
                                               "; import adapters with `brick import-lora`)");
    }
    BRICK_ASSIGN_OR_RETURN(ManifestRecord plugin, Resolve(ps.lora_ref, key));
    if (plugin.kind != ManifestKind::kPlugin) {
      return Error(key, "'" + ps.lora_ref + "' is a model, not a plugin (import adapters with `brick import-lora`)");
    }
    BRICK_RETURN_IF_ERROR(CheckSameRoot(plugin, key));
    PluginPlan plan;
    plan.scale = ps.scale;
    plan.merge = ps.merge;
    BRICK_ASSIGN_OR_RETURN(std::vector<BrickRecord> loras, reg_.ManifestBricks(plugin));
    for (BrickRecord& lora : loras) {
      const std::string target = lora.RelativeName();  // "L3.mlp.E5.w1"
      const size_t dot = target.rfind('.');
      const std::string brick_rel = dot == std::string::npos ? target : target.substr(0, dot);
      const std::string tensor = dot == std::string::npos ? "" : target.substr(dot + 1);
      if (lora.kind != BrickKind::kLora) {
        return Error(key, plugin.Ref() + ": brick " + lora.Ref() + " is a " + BrickKindName(lora.kind) + ", not a lora");
      }
      const BrickRecord* t = FindTarget(brick_rel);
      if (t == nullptr && brick_rel == "lm_head" && c_.config.tie_word_embeddings) {
        if (ps.merge) {
          return Error(key, "lora " + lora.Ref() + " targets the lm head, which " + c_.base.Ref() +
                                " ties to the embedding: it cannot be merged (attach it with merge: false)");
        }
        t = FindTarget("embed");  // the tied head's weights: shapes are checked against them
      }
      if (t == nullptr && RemovedFromBase(lora)) {  // a plugin for the full model on a pruned base
        plan.skipped.push_back(target);
        continue;
      }
      if (t == nullptr) {
        return Error(key, plugin.Ref() + ": lora " + lora.Ref() + " targets " + target + ", which " + c_.base.Ref() +
                              " does not have");
      }
      BRICK_RETURN_IF_ERROR(CheckLoraShape(key, lora, *t, t->kind == BrickKind::kEmbedding ? "weight" : tensor));
      if (!Kept(*t)) {
        plan.skipped.push_back(target);
        continue;
      }
      c_.bytes_to_load += lora.bytes;
      plan.bricks.push_back(std::move(lora));
    }
    plan.plugin = std::move(plugin);
    c_.plugins.push_back(std::move(plan));
    return Status::Ok();
  }

  // a [r, in] and b [out, r] must fit the target tensor: expert tensors are [in, out], the lm head
  // (nn.Linear) is [out, in].
  Status CheckLoraShape(const std::string& key, const BrickRecord& lora, const BrickRecord& t,
                        const std::string& tensor) const {
    const TensorRecord* w = nullptr;
    for (const TensorRecord& r : t.tensors)
      if (r.name == tensor) w = &r;
    const TensorRecord *a = nullptr, *b = nullptr;
    for (const TensorRecord& r : lora.tensors) {
      if (r.name == "a") a = &r;
      if (r.name == "b") b = &r;
    }
    if (w == nullptr || w->shape.size() != 2)
      return Error(key, "lora " + lora.Ref() + ": " + t.Ref() + " has no matrix '" + tensor + "'");
    const bool linear = t.kind == BrickKind::kLmHead || t.kind == BrickKind::kEmbedding;
    const int64_t in = linear ? w->shape[1] : w->shape[0], out = linear ? w->shape[0] : w->shape[1];
    if (a == nullptr || b == nullptr || a->shape.size() != 2 || b->shape.size() != 2 || a->shape[1] != in ||
        b->shape[0] != out || a->shape[0] != b->shape[1]) {
      auto shape = [](const TensorRecord* r) { return r == nullptr ? std::string("none") : ShapeToString(r->shape); };
      return Error(key, "lora " + lora.Ref() + " does not fit " + t.Ref() + "." + tensor + " (in " +
                            std::to_string(in) + ", out " + std::to_string(out) + "): a " + shape(a) + ", b " +
                            shape(b) + ", expected a [r, " + std::to_string(in) + "], b [" + std::to_string(out) +
                            ", r]");
    }
    return Status::Ok();
  }


  const Registry& reg_;
  const SubmodelSpec& spec_;
  Composition c_;
  std::vector<BrickRecord> base_all_;
};

}  // namespace

Result<Composition> Compose(const Registry& reg, const SubmodelSpec& spec) { return Composer(reg, spec).Run(); }

}  // namespace brickrt
