// Submodel assembly: the only place that knows both the registry's records and the model's bricks.
#include "node/submodel.h"

#include <map>

#include "bricks/lora.h"
#include "core/json.h"

namespace brickrt {
namespace {

int64_t PayloadBytes(const std::vector<BrickRecord>& records) {
  int64_t n = 0;
  for (const BrickRecord& r : records) n += r.bytes;
  return n;
}

// The model-relative name of the brick a lora targets: "L3.mlp.E5.w1" -> "L3.mlp.E5".
std::string TargetBrickName(const BrickData& lora) { return lora.target.substr(0, lora.target.rfind('.')); }

// Folds `lora` into the brick it targets, in place in `bricks`.
Status MergeInto(std::vector<BrickData>& bricks, const BrickData& lora, double scale, const ModelConfig& cfg) {
  BRICK_RETURN_IF_ERROR(CheckMergeable(lora, cfg));
  const std::string target = TargetBrickName(lora);
  for (BrickData& b : bricks) {
    if (b.kind == BrickKind::kLora || b.Name() != target) continue;
    BRICK_ASSIGN_OR_RETURN(b, MergeLora(b, lora, scale));
    return Status::Ok();
  }
  return NotFound("lora " + lora.target + ": its target brick " + target + " is not loaded");
}

}  // namespace

Result<LoadedModel> LoadManifestModel(const Registry& reg, const ManifestRecord& m) {
  if (m.kind != ManifestKind::kModel) {
    return InvalidArgument(m.Ref() + " is a plugin, not a model; attach it to a model in a spec (`plugins: - lora: " +
                           m.Ref() + "`) and run the spec");
  }
  BRICK_ASSIGN_OR_RETURN(std::vector<BrickRecord> records, reg.ManifestBricks(m));
  BRICK_ASSIGN_OR_RETURN(std::vector<BrickData> loaded, reg.LoadBricks(records));
  std::vector<BrickData> bricks;
  std::vector<LoraAttachment> loras;
  for (size_t i = 0; i < loaded.size(); ++i) {
    if (loaded[i].kind != BrickKind::kLora) {
      bricks.push_back(std::move(loaded[i]));
      continue;
    }
    const auto scale = m.plugin_scales.find(records[i].id);
    loras.push_back({std::move(loaded[i]), scale == m.plugin_scales.end() ? 1.0 : scale->second});
  }
  auto model = Model::Build(m.config, std::move(bricks), std::move(loras));
  if (!model.ok()) return model.status().WithContext(m.Ref());
  return LoadedModel{std::move(model).value(), PayloadBytes(records)};
}

Result<LoadedModel> LoadComposition(const Registry& reg, const Composition& c) {
  LoadedModel out;
  BRICK_ASSIGN_OR_RETURN(std::vector<BrickData> bricks, reg.LoadBricks(c.bricks));
  out.bytes_read = PayloadBytes(c.bricks);
  std::vector<LoraAttachment> loras;
  for (const PluginPlan& p : c.plugins) {
    BRICK_ASSIGN_OR_RETURN(std::vector<BrickData> plugin_bricks, reg.LoadBricks(p.bricks));
    out.bytes_read += PayloadBytes(p.bricks);
    for (BrickData& lora : plugin_bricks) {
      if (p.merge) {
        Status st = MergeInto(bricks, lora, p.scale, c.config);
        if (!st.ok()) return st.WithContext(p.plugin.Ref());
      } else {
        loras.push_back({std::move(lora), p.scale});
      }
    }
  }
  auto model = Model::Build(c.config, std::move(bricks), std::move(loras));
  if (!model.ok()) return model.status().WithContext(c.source_path);
  out.model = std::move(model).value();
  return out;
}

Result<ImportResult> SaveComposition(Registry& reg, const Composition& c) {
  if (c.name.empty()) return InvalidArgument(c.source_path + ": `name:` is required to save a submodel");
  // Merge targets, by the kept brick's position in c.bricks, with the loras folded into each.
  struct Merge {
    std::vector<const BrickRecord*> loras;
    std::vector<double> scales;
    std::vector<std::string> plugins;
  };
  std::map<size_t, Merge> merges;
  ManifestDraft draft;
  draft.name = c.name;
  draft.base = c.base.Ref();
  draft.config = c.config;
  draft.source = c.source_path;
  for (const PluginPlan& p : c.plugins) {
    for (const BrickRecord& lora : p.bricks) {
      if (!p.merge) continue;
      // By relative name: a submodel's kept bricks keep their original model's names.
      const std::string target = lora.RelativeName();
      const std::string target_brick = target.substr(0, target.rfind('.'));
      size_t i = 0;
      while (i < c.bricks.size() && c.bricks[i].RelativeName() != target_brick) ++i;
      if (i == c.bricks.size()) return NotFound(p.plugin.Ref() + ": target " + target_brick + " is not kept");
      merges[i].loras.push_back(&lora);
      merges[i].scales.push_back(p.scale);
      merges[i].plugins.push_back(p.plugin.Ref());
    }
  }
  // Derived bricks must outlive the draft: held here, keyed by position in c.bricks.
  struct Derived {
    BrickData data;
    Visibility visibility = Visibility::kShared;
    std::string metadata_json;
  };
  std::map<size_t, Derived> derived;
  for (const auto& [i, merge] : merges) {
    Derived d;
    BRICK_ASSIGN_OR_RETURN(d.data, reg.LoadBrick(c.bricks[i]));
    // Private in, private out: a brick derived from a private brick or a private lora stays on device.
    bool any_private = c.bricks[i].visibility == Visibility::kPrivate;
    JsonValue ops = JsonValue::MakeArray();
    for (size_t j = 0; j < merge.loras.size(); ++j) {
      BRICK_ASSIGN_OR_RETURN(BrickData lora, reg.LoadBrick(*merge.loras[j]));
      BRICK_RETURN_IF_ERROR(CheckMergeable(lora, c.config));
      BRICK_ASSIGN_OR_RETURN(d.data, MergeLora(d.data, lora, merge.scales[j]));
      any_private = any_private || merge.loras[j]->visibility == Visibility::kPrivate;
      JsonValue op = JsonValue::MakeObject();
      op.Set("lora", JsonValue::String(merge.loras[j]->Ref()));
      op.Set("plugin", JsonValue::String(merge.plugins[j]));
      op.Set("scale", JsonValue::Number(merge.scales[j]));
      ops.Append(std::move(op));
    }
    JsonValue meta = JsonValue::MakeObject();
    meta.Set("op", JsonValue::String("merge_lora"));
    meta.Set("from", JsonValue::String(c.bricks[i].Ref()));
    meta.Set("merged", std::move(ops));
    d.visibility = any_private ? Visibility::kPrivate : Visibility::kShared;
    d.metadata_json = DumpJson(meta);
    derived.emplace(i, std::move(d));
  }
  for (size_t i = 0; i < c.bricks.size(); ++i) {
    ManifestDraft::Entry e;
    e.brick_id = c.bricks[i].id;
    if (const auto d = derived.find(i); d != derived.end()) {
      e.data = &d->second.data;
      e.derived_from = c.bricks[i].id;
      e.visibility = d->second.visibility;
      e.metadata_json = d->second.metadata_json;
    }
    draft.entries.push_back(std::move(e));
  }
  for (const PluginPlan& p : c.plugins) {
    if (p.merge) continue;
    for (const BrickRecord& lora : p.bricks) {
      ManifestDraft::Entry e;
      e.brick_id = lora.id;
      e.scale = p.scale;
      draft.entries.push_back(std::move(e));
    }
  }
  return reg.SaveManifest(draft);
}

}  // namespace brickrt
