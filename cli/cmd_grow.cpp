// brick grow: externally trained experts for one layer + their router rows -> new expert bricks, a
// new router version and a new manifest whose base is the grown one (registry/grow.h, docs/grow.md).
#include <cstdio>

#include "cli/commands.h"
#include "cli/records_json.h"
#include "cli/registry_access.h"
#include "core/json.h"
#include "registry/grow.h"

namespace brickrt::cli {
namespace {

constexpr const char* kCmd = "grow";

JsonValue ToJson(const GrowResult& r, const GrowRequest& req, const std::string& registry) {
  JsonValue o = JsonValue::MakeObject();
  o.Set("manifest", JsonValue::String(r.manifest.Ref()));
  o.Set("base", JsonValue::String(r.base.Ref()));
  o.Set("layer", JsonValue::Int(req.layer));
  o.Set("kind", JsonValue::String(req.attention ? "attn" : "mlp"));
  o.Set("experts_before", JsonValue::Int(r.experts_before));
  o.Set("experts_after", JsonValue::Int(r.experts_after));
  o.Set("params_before", JsonValue::Int(r.params_before));
  o.Set("params_after", JsonValue::Int(r.params_after));
  o.Set("new_blob_bytes", JsonValue::Int(r.new_blob_bytes));
  JsonValue added = JsonValue::MakeArray();
  for (const BrickRecord& b : r.added) {
    JsonValue bj = BrickJson(b, /*with_detail=*/false);
    bj.Set("ref", JsonValue::String(b.Ref()));
    const bool router = b.kind == BrickKind::kAttnRouter || b.kind == BrickKind::kMlpRouter;
    bj.Set("parent", router ? JsonValue::String(r.old_router.Ref()) : JsonValue());
    added.Append(std::move(bj));
  }
  o.Set("added", std::move(added));
  o.Set("registry", JsonValue::String(registry));
  return o;
}

}  // namespace

int GrowCommand(const std::vector<std::string>& args) {
  ArgParser a(kCmd, "MODEL_REF --layer L --kind mlp|attn --experts FILE --router FILE --save NEW_NAME [options]",
              "Adds externally trained experts to one layer (ModuleFormer's A': new experts + router rows A')\n"
              "and stores the result as a new model NEW_NAME@1 whose base is MODEL_REF. New bricks are named\n"
              "NEW_NAME/L<L>.<kind>.E<j> (j continues after the layer's experts) and NEW_NAME/L<L>.<kind>.router\n"
              "(lineage: the old router); every other brick is the base's, unchanged. Nothing is written on\n"
              "any error. File layouts: docs/grow.md.");
  a.Positional("MODEL_REF", "the model to grow: NAME, NAME@VERSION or NAME:TAG (a submodel works too)");
  a.Option("layer", "L", "the layer that gets the experts (0-based)");
  a.Option("kind", "mlp|attn", "MLP experts (mlpf.*) or attention experts (attn.q_proj.*)");
  a.Option("experts", "FILE", "safetensors with the stacked [n_new, in, out] expert tensors, checkpoint names");
  a.Option("router", "FILE", "safetensors with w_gate.3.weight: the n_new new rows, or the full grown matrix");
  a.Option("save", "NEW_NAME", "name of the new model manifest (must not exist yet)");
  a.Option("visibility", "shared|private", "visibility of the new expert bricks (default shared)");
  AddRegistryOption(a);
  a.Flag("json", "print what was added as one JSON object");
  if (const auto exit_code = a.ParseOrExit(args)) return *exit_code;

  GrowRequest req;
  const auto ref = a.GetPositional(0);
  if (!ref) return Fail(kCmd, "missing MODEL_REF (usage: brick grow MODEL_REF --layer L --kind mlp|attn ...)", 2);
  req.model_ref = *ref;
  for (const char* required : {"layer", "kind", "experts", "router", "save"}) {
    if (!a.Has(required)) return Fail(kCmd, std::string("--") + required + " is required (see brick grow --help)", 2);
  }
  auto layer = a.GetInt("layer", -1);
  if (!layer.ok()) return Fail(kCmd, layer.status().message(), 2);
  req.layer = *layer;
  const std::string kind = a.Get("kind");
  if (kind != "mlp" && kind != "attn") return Fail(kCmd, "--kind must be mlp or attn, not '" + kind + "'", 2);
  req.attention = kind == "attn";
  req.experts_path = a.Get("experts");
  req.router_path = a.Get("router");
  req.new_name = a.Get("save");
  const auto vis = ParseVisibility(a.Get("visibility", "shared"));
  if (!vis) return Fail(kCmd, "--visibility must be shared or private", 2);
  req.visibility = *vis;

  auto reg = OpenRegistry(a, /*writes=*/true);
  if (!reg.ok()) return Fail(kCmd, reg.status().message());
  auto res = GrowModel(**reg, req);
  if (!res.ok()) return Fail(kCmd, res.status().message());

  if (a.Has("json")) {
    std::printf("%s\n", DumpJson(ToJson(*res, req, (*reg)->path())).c_str());
    return 0;
  }
  std::printf("grew %s layer %lld: %s experts %lld -> %lld, params %lld -> %lld; saved %s in %s\n",
              res->base.Ref().c_str(), static_cast<long long>(req.layer), req.attention ? "attention" : "MLP",
              static_cast<long long>(res->experts_before), static_cast<long long>(res->experts_after),
              static_cast<long long>(res->params_before), static_cast<long long>(res->params_after),
              res->manifest.Ref().c_str(), (*reg)->path().c_str());
  for (const BrickRecord& b : res->added) {
    const bool router = b.kind == BrickKind::kAttnRouter || b.kind == BrickKind::kMlpRouter;
    std::printf("  + %-32s %s%s\n", b.Ref().c_str(), b.digest.substr(0, 16).c_str(),
                router ? (" (parent " + res->old_router.Ref() + ")").c_str() : "");
  }
  return 0;
}

}  // namespace brickrt::cli
