// brick import-lora: a PEFT LoRA adapter directory -> lora bricks + a plugin manifest made for a base
// model of the registry (docs/plugins.md).
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <set>

#include "cli/commands.h"
#include "cli/registry_access.h"
#include "core/json.h"
#include "registry/peft_adapter.h"

namespace brickrt::cli {
namespace {

// "rank 8", or "ranks 4, 8" when rank_pattern gave modules different ranks.
std::string RanksText(const std::set<int64_t>& ranks) {
  std::string s = ranks.size() == 1 ? "rank " : "ranks ";
  for (int64_t r : ranks) s += (s.back() == ' ' ? "" : ", ") + std::to_string(r);
  return s;
}

}  // namespace

int ImportLoraCommand(const std::vector<std::string>& args) {
  const char* cmd = "import-lora";
  ArgParser a(cmd, "DIR --name NAME --base MODEL_REF [options]",
              "Imports a PEFT LoRA adapter (adapter_config.json + adapter_model.safetensors) trained on the\n"
              "registry model MODEL_REF as the plugin NAME@VERSION: one lora brick per adapted projection\n"
              "(expert wq/wo/w1/w2, lm_head), each checked against the base model's layers, experts and\n"
              "shapes. Re-importing the same adapter adds nothing. A submodel spec attaches it with\n"
              "`plugins: [{lora: NAME@VERSION, scale: 0.5}]`; see docs/plugins.md.");
  a.Positional("DIR", "adapter directory (adapter_config.json + adapter_model.safetensors)");
  a.Option("name", "NAME", "plugin name; its bricks are named NAME/L3.mlp.E5.w1, NAME/lm_head.weight, ...");
  a.Option("base", "MODEL_REF", "the model the adapter was trained on: NAME, NAME@VERSION or NAME:TAG");
  a.Flag("private", "store the bricks as private (kept on this device, never placed on a remote node)");
  AddRegistryOption(a);
  a.Flag("json",
         "print {plugin, base, new_manifest, new_bricks, reused_bricks, targets, ranks, bytes, new_blob_bytes, "
         "registry}");
  if (const auto exit_code = a.ParseOrExit(args)) return *exit_code;
  const auto dir = a.GetPositional(0);
  if (!dir)
    return Fail(cmd, "missing adapter directory (usage: brick import-lora DIR --name NAME --base MODEL_REF)", 2);
  const std::string name = a.Get("name");
  if (name.empty()) return Fail(cmd, "--name NAME is required", 2);
  if (name.find_first_of("/@:*? \t") != std::string::npos)
    return Fail(cmd, "--name '" + name + "': a plugin name may not contain '/', '@', ':', '*', '?' or spaces", 2);
  const std::string base_ref = a.Get("base");
  if (base_ref.empty()) return Fail(cmd, "--base MODEL_REF is required (the model the adapter was trained on)", 2);
  const Visibility vis = a.Has("private") ? Visibility::kPrivate : Visibility::kShared;

  auto reg = OpenRegistry(a, /*writes=*/true, /*busy_timeout_ms=*/30 * 60 * 1000);
  if (!reg.ok()) return Fail(cmd, reg.status().message());
  auto base = (*reg)->ResolveModel(base_ref);
  if (!base.ok()) return Fail(cmd, "--base: " + base.status().message());
  if (base->kind != ManifestKind::kModel) {
    return Fail(cmd, "--base " + base_ref + " is " + base->Ref() + ", a " + ManifestKindName(base->kind) +
                         ", not a model; name the model the adapter was trained on");
  }
  if (isatty(STDERR_FILENO)) std::fprintf(stderr, "reading %s ...\n", dir->c_str());
  auto bricks = ReadPeftAdapter(*dir, base->config);
  if (!bricks.ok()) return Fail(cmd, bricks.status().message());
  auto res = (*reg)->ImportPlugin(name, *base, *bricks, vis, *dir);
  if (!res.ok()) return Fail(cmd, res.status().message());

  std::set<int64_t> ranks;
  int64_t bytes = 0;
  for (const BrickData& b : *bricks) {
    ranks.insert(b.Find("a")->dim(0));
    bytes += static_cast<int64_t>(b.nbytes());
  }
  if (a.Has("json")) {
    JsonValue o = JsonValue::MakeObject();
    o.Set("plugin", JsonValue::String(res->manifest.Ref()));
    o.Set("base", JsonValue::String(base->Ref()));
    o.Set("new_manifest", JsonValue::Bool(res->new_manifest));
    o.Set("new_bricks", JsonValue::Int(res->new_bricks));
    o.Set("reused_bricks", JsonValue::Int(res->reused_bricks));
    o.Set("targets", JsonValue::Int(static_cast<int64_t>(bricks->size())));
    JsonValue rj = JsonValue::MakeArray();
    for (int64_t r : ranks) rj.Append(JsonValue::Int(r));
    o.Set("ranks", std::move(rj));
    o.Set("bytes", JsonValue::Int(bytes));
    o.Set("new_blob_bytes", JsonValue::Int(res->new_blob_bytes));
    o.Set("registry", JsonValue::String((*reg)->path()));
    std::printf("%s\n", DumpJson(o).c_str());
  } else {
    std::printf(
        "%s: %s for %s: %zu targets, %s, %.2f MiB (%d new bricks, %d unchanged, %.2f MiB of new payload) in %s\n",
        res->new_manifest ? "imported" : "unchanged", res->manifest.Ref().c_str(), base->Ref().c_str(), bricks->size(),
        RanksText(ranks).c_str(), static_cast<double>(bytes) / (1 << 20), res->new_bricks, res->reused_bricks,
        static_cast<double>(res->new_blob_bytes) / (1 << 20), (*reg)->path().c_str());
  }
  return 0;
}

}  // namespace brickrt::cli
