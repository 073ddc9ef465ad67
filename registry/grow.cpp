// GrowModel: resolve the model, check the two files against it, then store the new bricks and the
// grown manifest through Registry::SaveManifest (one transaction, lineage to the grown bricks).
#include "registry/grow.h"

#include <optional>

#include "core/json.h"
#include "registry/grow_internal.h"
#include "registry/registry_internal.h"

namespace brickrt {
namespace {

// NEW_NAME names a model that did not exist: a new version of an existing name would make `brick run
// NAME` silently switch models (use a new name per grow; tags move between them).
Status CheckNameFree(const Registry& reg, const std::string& name) {
  BRICK_RETURN_IF_ERROR(registry_internal::CheckName(name, "--save name"));
  auto taken = reg.ResolveModel(name);
  if (taken.ok()) {
    return InvalidArgument("--save name '" + name + "' is taken (" + taken->Ref() + ", a " +
                           ManifestKindName(taken->kind) + "); choose a new name for the grown model");
  }
  return taken.status().code() == StatusCode::kNotFound ? Status::Ok() : taken.status();
}

int64_t Params(const BrickRecord& b) {
  int64_t n = 0;
  for (const TensorRecord& t : b.tensors) n += NumElements(t.shape);
  return n;
}

int64_t Params(const BrickData& b) {
  int64_t n = 0;
  for (const auto& [name, t] : b.tensors) n += t.numel();
  return n;
}

// The new bricks' metadata: where they came from (the router also how many rows it had and gained).
std::string Metadata(const ManifestRecord& base, const std::string& from, int64_t rows_before, int64_t rows_added) {
  JsonValue m = JsonValue::MakeObject();
  m.Set("op", JsonValue::String("grow"));
  m.Set("base", JsonValue::String(base.Ref()));
  m.Set("from", JsonValue::String(from));
  if (rows_added > 0) {
    m.Set("rows_before", JsonValue::Int(rows_before));
    m.Set("rows_added", JsonValue::Int(rows_added));
  }
  return DumpJson(m);
}

}  // namespace

Result<GrowResult> GrowModel(Registry& reg, const GrowRequest& req) {
  BRICK_RETURN_IF_ERROR(CheckNameFree(reg, req.new_name));
  GrowResult res;
  BRICK_ASSIGN_OR_RETURN(res.base, reg.ResolveModel(req.model_ref));
  const ManifestRecord& base = res.base;
  if (base.kind != ManifestKind::kModel) {
    return InvalidArgument(base.Ref() + " is a plugin, not a model; grow the model it was made for");
  }
  const ModelConfig& cfg = base.config;
  if (req.layer < 0 || req.layer >= cfg.n_layer) {
    return InvalidArgument("layer " + std::to_string(req.layer) + " is out of range (" + base.Ref() + " has " +
                           std::to_string(cfg.n_layer) + " layers, 0-" + std::to_string(cfg.n_layer - 1) + ")");
  }
  const auto L = static_cast<size_t>(req.layer);
  const BrickKind router_kind = req.attention ? BrickKind::kAttnRouter : BrickKind::kMlpRouter;
  const BrickKind expert_kind = req.attention ? BrickKind::kAttnExpert : BrickKind::kMlpExpert;
  res.experts_before = (req.attention ? cfg.n_att_experts : cfg.n_mlp_experts).at(L);

  BRICK_ASSIGN_OR_RETURN(std::vector<BrickRecord> records, reg.ManifestBricks(base));
  const BrickRecord* router = nullptr;
  size_t router_pos = 0, insert_after = 0;  // manifest positions
  for (size_t i = 0; i < records.size(); ++i) {
    const BrickRecord& b = records[i];
    if (b.kind != BrickKind::kLora) res.params_before += Params(b);
    if (b.layer != req.layer) continue;
    if (b.kind == router_kind) router = &b, router_pos = i;
    if (b.kind == expert_kind) insert_after = i;
  }
  if (router == nullptr) {
    return Corrupt(base.Ref() + " has no " + BrickKindName(router_kind) + " brick for layer " +
                   std::to_string(req.layer));
  }
  if (insert_after < router_pos) insert_after = router_pos;
  res.old_router = *router;
  BRICK_ASSIGN_OR_RETURN(BrickData old_router, reg.LoadBrick(*router));
  BRICK_ASSIGN_OR_RETURN(grow_internal::GrowFiles files,
                         grow_internal::ReadGrowFiles(req, cfg, old_router, router->Ref()));
  const auto n = static_cast<int64_t>(files.experts.size());
  res.experts_after = res.experts_before + n;

  ManifestDraft draft;
  draft.name = req.new_name;
  draft.base = base.Ref();
  draft.config = cfg;
  (req.attention ? draft.config.n_att_experts : draft.config.n_mlp_experts)[L] = res.experts_after;
  draft.op = "grow";
  draft.source = !req.source.empty()
                     ? req.source
                     : "grow " + base.Ref() + " layer " + std::to_string(req.layer) + " " +
                           (req.attention ? "attn" : "mlp") + ": " + req.experts_path + ", " + req.router_path;
  const bool private_router = router->visibility == Visibility::kPrivate || req.visibility == Visibility::kPrivate;
  for (size_t i = 0; i < records.size(); ++i) {
    ManifestDraft::Entry e;
    if (i == router_pos) {
      e.data = &files.router;
      e.derived_from = router->id;
      e.visibility = private_router ? Visibility::kPrivate : Visibility::kShared;
      e.metadata_json = Metadata(base, req.router_path, res.experts_before, n);
    } else {
      e.brick_id = records[i].id;
      const auto scale = base.plugin_scales.find(records[i].id);
      if (scale != base.plugin_scales.end()) e.scale = scale->second;
    }
    draft.entries.push_back(std::move(e));
    if (i != insert_after) continue;
    for (const BrickData& x : files.experts) {
      ManifestDraft::Entry ne;
      ne.data = &x;
      ne.visibility = req.visibility;
      ne.metadata_json = Metadata(base, req.experts_path, 0, 0);
      draft.entries.push_back(std::move(ne));
    }
  }

  BRICK_ASSIGN_OR_RETURN(ImportResult saved, reg.SaveManifest(draft));
  res.manifest = std::move(saved.manifest);
  res.new_blob_bytes = saved.new_blob_bytes;
  res.params_after = res.params_before - Params(*router) + Params(files.router);
  for (const BrickData& x : files.experts) res.params_after += Params(x);

  BRICK_ASSIGN_OR_RETURN(std::vector<BrickRecord> now, reg.ManifestBricks(res.manifest));
  std::optional<BrickRecord> new_router;
  for (BrickRecord& b : now) {
    if (b.layer != req.layer) continue;
    if (b.kind == expert_kind && b.index >= res.experts_before) res.added.push_back(b);
    if (b.kind == router_kind) new_router = std::move(b);
  }
  if (new_router) res.added.push_back(std::move(*new_router));
  return res;
}

}  // namespace brickrt
