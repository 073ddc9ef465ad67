// brick compose: resolve a submodel spec against the registry and show what it keeps and costs;
// --save stores it as a manifest.
#include <cstdio>
#include <optional>

#include "cli/commands.h"
#include "cli/registry_access.h"
#include "core/json.h"
#include "core/submodel_spec.h"
#include "node/split.h"
#include "node/submodel.h"
#include "registry/compose.h"

namespace brickrt::cli {
namespace {

constexpr const char* kCmd = "compose";

// "0-7,9" for ascending ids.
std::string IdRanges(const std::vector<int64_t>& ids) {
  std::string s;
  for (size_t i = 0; i < ids.size();) {
    size_t j = i;
    while (j + 1 < ids.size() && ids[j + 1] == ids[j] + 1) ++j;
    s += (s.empty() ? "" : ",") + std::to_string(ids[i]) + (j > i ? "-" + std::to_string(ids[j]) : "");
    i = j + 1;
  }
  return s;
}

// "16/16" when all stay; else "13/16 removed 3,5,9" or "4/16 kept 0-3", whichever list is shorter.
std::string KeptText(const std::vector<int64_t>& kept, int64_t total) {
  std::string s = std::to_string(kept.size()) + "/" + std::to_string(total);
  if (static_cast<int64_t>(kept.size()) == total) return s;
  std::vector<int64_t> removed;
  for (int64_t e = 0, i = 0; e < total; ++e) {
    if (i < static_cast<int64_t>(kept.size()) && kept[static_cast<size_t>(i)] == e) {
      ++i;
    } else {
      removed.push_back(e);
    }
  }
  return s + (removed.size() <= kept.size() ? " removed " + IdRanges(removed) : " kept " + IdRanges(kept));
}

std::string Human(double v, const char* unit) {
  const char* prefixes[] = {"", " K", " M", " G", " T"};
  int p = 0;
  while (v >= 1000 && p < 4) v /= 1000, ++p;
  char buf[48];
  std::snprintf(buf, sizeof buf, p == 0 ? "%.0f%s%s" : "%.1f%s%s", v, prefixes[p], unit);
  return buf;
}

std::string Percent(int64_t part, int64_t whole) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%.0f%%", whole > 0 ? 100.0 * static_cast<double>(part) / whole : 0.0);
  return buf;
}

JsonValue IdsJson(const std::vector<int64_t>& ids) {
  JsonValue a = JsonValue::MakeArray();
  for (int64_t id : ids) a.Append(JsonValue::Int(id));
  return a;
}

JsonValue ToJson(const Composition& c) {
  JsonValue o = JsonValue::MakeObject();
  o.Set("name", JsonValue::String(c.name));
  o.Set("spec", JsonValue::String(c.source_path));
  o.Set("base", JsonValue::String(c.base.Ref()));
  o.Set("k_att", JsonValue::Int(c.config.k_att));
  o.Set("k_mlp", JsonValue::Int(c.config.k_mlp));
  JsonValue layers = JsonValue::MakeArray();
  for (const LayerPlan& l : c.layers) {
    JsonValue lo = JsonValue::MakeObject();
    lo.Set("layer", JsonValue::Int(l.layer));
    lo.Set("attention_kept", IdsJson(l.att_kept));
    lo.Set("attention_total", JsonValue::Int(l.att_total));
    lo.Set("mlp_kept", IdsJson(l.mlp_kept));
    lo.Set("mlp_total", JsonValue::Int(l.mlp_total));
    lo.Set("bytes", JsonValue::Int(l.bytes));
    layers.Append(std::move(lo));
  }
  o.Set("layers", std::move(layers));
  JsonValue plugins = JsonValue::MakeArray();
  for (const PluginPlan& p : c.plugins) {
    JsonValue po = JsonValue::MakeObject();
    po.Set("plugin", JsonValue::String(p.plugin.Ref()));
    po.Set("scale", JsonValue::Number(p.scale));
    po.Set("merge", JsonValue::Bool(p.merge));
    po.Set("inherited", JsonValue::Bool(p.inherited));
    po.Set("loras", JsonValue::Int(static_cast<int64_t>(p.bricks.size())));
    po.Set("skipped", JsonValue::Int(static_cast<int64_t>(p.skipped.size())));
    plugins.Append(std::move(po));
  }
  o.Set("plugins", std::move(plugins));
  o.Set("params_total", JsonValue::Int(c.params_total));
  o.Set("params_active", JsonValue::Int(c.params_active));
  o.Set("bytes_to_load", JsonValue::Int(c.bytes_to_load));
  o.Set("base_params_total", JsonValue::Int(c.base_params_total));
  o.Set("base_bytes", JsonValue::Int(c.base_bytes));
  o.Set("bricks", JsonValue::Int(static_cast<int64_t>(c.bricks.size())));
  return o;
}

JsonValue PlacementJson(const PlacementSummary& p) {
  JsonValue o = JsonValue::MakeObject();
  o.Set("device", JsonValue::String(p.device.ToString()));
  JsonValue elsewhere = JsonValue::MakeObject();
  for (const auto& [place, experts] : p.elsewhere) elsewhere.Set(place, JsonValue::Int(experts));
  o.Set("mlp_experts_elsewhere", std::move(elsewhere));
  return o;
}

// "placement: the model on cuda:0; MLP experts elsewhere: 1 on cpu, 30 on cloud".
void PrintPlacement(const PlacementSummary& p) {
  std::printf("placement: the model on %s", p.device.ToString().c_str());
  for (size_t i = 0; i < p.elsewhere.size(); ++i) {
    std::printf("%s%lld on %s", i == 0 ? "; MLP experts elsewhere: " : ", ",
                static_cast<long long>(p.elsewhere[i].second), p.elsewhere[i].first.c_str());
  }
  std::printf("\n");
}

void PrintTable(const Composition& c) {
  std::printf("%s: from %s, %zu layers, top-%d attention / top-%d MLP experts per token\n",
              c.name.empty() ? c.source_path.c_str() : c.name.c_str(), c.base.Ref().c_str(), c.layers.size(),
              c.config.k_att, c.config.k_mlp);
  std::printf("%-6s %-28s %-28s %10s\n", "layer", "attention experts kept", "MLP experts kept", "bytes");
  for (const LayerPlan& l : c.layers) {
    std::printf("%-6lld %-28s %-28s %10s\n", static_cast<long long>(l.layer), KeptText(l.att_kept, l.att_total).c_str(),
                KeptText(l.mlp_kept, l.mlp_total).c_str(), Human(static_cast<double>(l.bytes), "B").c_str());
  }
  for (const PluginPlan& p : c.plugins) {
    std::printf("plugin %s%s: %zu loras, scale %g, %s", p.plugin.Ref().c_str(), p.inherited ? " (inherited)" : "",
                p.bricks.size(), p.scale, p.merge ? "merged into new brick versions" : "applied on the fly");
    if (!p.skipped.empty()) std::printf(" (%zu skipped: their targets are removed)", p.skipped.size());
    std::printf("\n");
  }
  std::printf("params: %s total (%s of the base's %s), %s active per token\n",
              Human(static_cast<double>(c.params_total), "").c_str(),
              Percent(c.params_total, c.base_params_total).c_str(),
              Human(static_cast<double>(c.base_params_total), "").c_str(),
              Human(static_cast<double>(c.params_active), "").c_str());
  size_t loras = 0;
  for (const PluginPlan& p : c.plugins) loras += p.bricks.size();
  std::printf("bytes to load: %s (%s of the base's %s): %zu bricks",
              Human(static_cast<double>(c.bytes_to_load), "B").c_str(), Percent(c.bytes_to_load, c.base_bytes).c_str(),
              Human(static_cast<double>(c.base_bytes), "B").c_str(), c.bricks.size());
  if (loras > 0) std::printf(" + %zu loras", loras);
  std::printf("\n");
}

}  // namespace

int ComposeCommand(const std::vector<std::string>& args) {
  ArgParser a(kCmd, "SPEC.yaml [--save] [options]",
              "Resolves a submodel spec against the registry: the base model, the experts it keeps per layer,\n"
              "the plugins it attaches, parameters (total and active per token) and bytes to load. --save\n"
              "stores it as a manifest under the spec's `name:` (then `brick run NAME` runs it).");
  a.Positional("SPEC", "submodel spec (YAML); see configs/python-coder.yaml");
  AddRegistryOption(a);
  a.Flag("save", "store the submodel as a new manifest version of its `name:`");
  a.Flag("json", "print the composition as one JSON object");
  if (const auto exit_code = a.ParseOrExit(args)) return *exit_code;
  const auto path = a.GetPositional(0);
  if (!path) return Fail(kCmd, "missing spec file (usage: brick compose SPEC.yaml)", 2);
  auto spec = ReadSubmodelSpec(*path);
  if (!spec.ok()) return Fail(kCmd, spec.status().message());
  const bool save = a.Has("save");
  auto reg = OpenRegistry(a, /*writes=*/save, /*busy_timeout_ms=*/save ? 60 * 1000 : 5000);
  if (!reg.ok()) return Fail(kCmd, reg.status().message());
  auto c = Compose(**reg, *spec);
  if (!c.ok()) return Fail(kCmd, c.status().message());
  // Where it would run: checked now, so a placement that cannot run fails here, not at `brick run`.
  auto placed = SummarizePlacement(*c);
  if (!placed.ok()) return Fail(kCmd, placed.status().message());

  // Saved before anything is printed, so an error that only saving finds (no `name:`, a name
  // taken, a merge that cannot be done) is the only output.
  std::optional<ImportResult> saved;
  if (save) {
    auto r = SaveComposition(**reg, *c);
    if (!r.ok()) return Fail(kCmd, r.status().message());
    saved = std::move(r).value();
  }
  JsonValue o = ToJson(*c);
  if (c->placement) o.Set("placement", PlacementJson(*placed));
  if (!a.Has("json")) {
    PrintTable(*c);
    if (c->placement) PrintPlacement(*placed);
  }
  if (saved) {
    o.Set("manifest", JsonValue::String(saved->manifest.Ref()));
    o.Set("new_manifest", JsonValue::Bool(saved->new_manifest));
    o.Set("new_bricks", JsonValue::Int(saved->new_bricks));
    if (!a.Has("json")) {
      std::printf("%s %s (%d new bricks) in %s\n", saved->new_manifest ? "saved" : "unchanged",
                  saved->manifest.Ref().c_str(), saved->new_bricks, (*reg)->path().c_str());
    }
  }
  if (a.Has("json")) std::printf("%s\n", DumpJson(o).c_str());
  return 0;
}

}  // namespace brickrt::cli
