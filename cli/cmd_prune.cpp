// brick prune: remove the experts a stored profile says the data rarely chose (normalised frequency
// below a threshold), saved as a submodel with lineage to the model (docs/profiling.md).
#include <cstdio>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/eval_common.h"
#include "cli/registry_access.h"
#include "core/json.h"
#include "core/system.h"
#include "node/submodel.h"
#include "registry/compose.h"

namespace brickrt::cli {
namespace {

constexpr const char* kCmd = "prune";

JsonValue RemovedJson(const std::vector<std::vector<int64_t>>& removed) {
  JsonValue o = JsonValue::MakeObject();
  for (size_t l = 0; l < removed.size(); ++l) {
    if (removed[l].empty()) continue;
    JsonValue ids = JsonValue::MakeArray();
    for (int64_t e : removed[l]) ids.Append(JsonValue::Int(e));
    o.Set(std::to_string(l), std::move(ids));
  }
  return o;
}

int64_t Count(const std::vector<std::vector<int64_t>>& v) {
  int64_t n = 0;
  for (const auto& l : v) n += static_cast<int64_t>(l.size());
  return n;
}

}  // namespace

int PruneCommand(const std::vector<std::string>& args) {
  ArgParser a(kCmd, "MODEL --profile NAME --threshold T --save NEW [--kind mlp|attn|both] [--eval FILE] [--json]",
              "Removes the experts a stored profile (brick profile --save NAME) rarely chose: in each layer an\n"
              "expert's normalised frequency is its count / the count of the layer's busiest expert (per kind);\n"
              "experts under T are removed, except that a layer always keeps its top_k most chosen. The result\n"
              "is saved as the submodel NEW (base = MODEL, drop semantics of docs/submodels.md): the same as a\n"
              "spec with `keep: {profile: NAME, threshold: T}`. The profile must be measured on MODEL itself.");
  a.Positional("MODEL", "registry model reference (the one the profile was measured on)");
  AddRegistryOption(a);
  a.Option("profile", "NAME", "a stored profile");
  a.Option("threshold", "T", "normalised frequency in [0, 1] under which an expert is removed");
  a.Option("save", "NEW", "name of the new model manifest");
  a.Option("kind", "KIND", "which experts to prune: mlp, attn or both (default both)");
  a.Option("eval", "FILE", "token data: print perplexity before and after");
  AddWindowOptions(a);
  a.Option("threads", "N", "worker threads for --eval, 0 = every usable core (default 0)");
  a.Flag("json", "print one JSON object: saved, removed, params, perplexity before/after");
  if (const auto exit_code = a.ParseOrExit(args)) return *exit_code;
  const auto ref = a.GetPositional(0);
  if (!ref) return Fail(kCmd, "say which model to prune: brick prune MODEL --profile NAME --threshold T --save NEW", 2);
  for (const char* req : {"profile", "threshold", "save"})
    if (!a.Has(req)) return Fail(kCmd, std::string("--") + req + " is required", 2);
  auto threshold = a.GetDouble("threshold", 0);
  if (!threshold.ok()) return Fail(kCmd, threshold.status().message(), 2);
  if (!(*threshold >= 0.0 && *threshold <= 1.0))
    return Fail(kCmd, "--threshold must be in [0, 1] (a share of the layer's busiest expert), got " + a.Get("threshold"), 2);
  const std::string kind = a.Get("kind", "both");
  if (kind != "mlp" && kind != "attn" && kind != "both") return Fail(kCmd, "--kind must be mlp, attn or both", 2);
  auto window = WindowOptions(a);
  if (!window.ok()) return Fail(kCmd, window.status().message(), 2);
  auto threads = a.GetInt("threads", 0);
  if (!threads.ok() || *threads < 0 || *threads > 1024) return Fail(kCmd, "--threads must be in [0, 1024]", 2);

  auto reg = OpenRegistry(a, /*writes=*/true);
  if (!reg.ok()) return Fail(kCmd, reg.status().message());
  auto m = (*reg)->ResolveModel(*ref);
  if (!m.ok()) return Fail(kCmd, m.status().message());
  SubmodelSpec spec;
  spec.model = m->Ref();
  spec.name = a.Get("save");
  spec.source_path = "brick prune --profile " + a.Get("profile");
  auto before = Compose(**reg, spec);  // the model as it is, for the parameter counts
  if (!before.ok()) return Fail(kCmd, before.status().message());
  for (ExpertSelection* sel : {&spec.mlp, &spec.attention}) {
    if ((sel == &spec.mlp && kind == "attn") || (sel == &spec.attention && kind == "mlp")) continue;
    sel->mode = ExpertSelection::Mode::kProfile;
    sel->profile = a.Get("profile");
    sel->threshold = *threshold;
  }
  auto c = Compose(**reg, spec);
  if (!c.ok()) return Fail(kCmd, c.status().message());
  for (const std::string& n : c->notes) std::fprintf(stderr, "brick prune: note: %s\n", n.c_str());
  auto saved = SaveComposition(**reg, *c);
  if (!saved.ok()) return Fail(kCmd, saved.status().message());

  std::optional<EvalResult> ppl_before, ppl_after;
  if (a.Has("eval")) {
    ThreadPool pool(*threads == 0 ? UsableCores() : static_cast<int>(*threads));
    window->pool = &pool;
    // The pruned model keeps its base's tokenizer, so one serves both.
    auto tokenizer = (*reg)->LoadTokenizer(*m);
    if (!tokenizer.ok()) return Fail(kCmd, tokenizer.status().message());
    for (const ManifestRecord* mm : {&*m, &saved->manifest}) {
      auto loaded = LoadManifestModel(**reg, *mm);
      if (!loaded.ok()) return Fail(kCmd, loaded.status().message());
      auto data = ReadData(a.Get("eval"), loaded->model->config(), *tokenizer ? &**tokenizer : nullptr);
      if (!data.ok()) return Fail(kCmd, data.status().message());
      window->progress = ProgressBar("eval " + mm->Ref());
      auto r = EvaluatePerplexity(loaded->model, data->ids, *window);
      FinishProgress(window->progress);
      if (!r.ok()) return Fail(kCmd, a.Get("eval") + ": " + r.status().message());
      (mm == &*m ? ppl_before : ppl_after) = *r;
    }
  }
  const ModelConfig& cfg = c->config;
  const int64_t att_removed = Count(cfg.att_removed) - Count(m->config.att_removed);
  const int64_t mlp_removed = Count(cfg.mlp_removed) - Count(m->config.mlp_removed);
  if (a.Has("json")) {
    JsonValue o = JsonValue::MakeObject();
    o.Set("model", JsonValue::String(m->Ref()));
    o.Set("saved", JsonValue::String(saved->manifest.Ref()));
    o.Set("profile", JsonValue::String(a.Get("profile")));
    o.Set("threshold", JsonValue::Number(*threshold));
    JsonValue removed = JsonValue::MakeObject();
    removed.Set("attn", RemovedJson(cfg.att_removed));
    removed.Set("mlp", RemovedJson(cfg.mlp_removed));
    o.Set("removed", std::move(removed));
    JsonValue notes = JsonValue::MakeArray();
    for (const std::string& n : c->notes) notes.Append(JsonValue::String(n));
    o.Set("notes", std::move(notes));
    o.Set("params_total", JsonValue::Int(c->params_total));
    o.Set("params_total_before", JsonValue::Int(before->params_total));
    o.Set("params_active", JsonValue::Int(c->params_active));
    o.Set("params_active_before", JsonValue::Int(before->params_active));
    if (ppl_before) {
      o.Set("perplexity_before", JsonValue::Number(ppl_before->perplexity));
      o.Set("perplexity_after", JsonValue::Number(ppl_after->perplexity));
      o.Set("eval_tokens", JsonValue::Int(ppl_after->tokens));
    }
    std::printf("%s\n", DumpJson(o).c_str());
    return 0;
  }
  std::printf("%s: from %s by profile %s, threshold %g: removed %lld attention and %lld MLP experts%s\n",
              saved->manifest.Ref().c_str(), m->Ref().c_str(), a.Get("profile").c_str(), *threshold,
              static_cast<long long>(att_removed), static_cast<long long>(mlp_removed),
              saved->new_manifest ? "" : " (unchanged: the same manifest was already saved)");
  std::printf("layer  attention kept  MLP kept\n");
  for (const LayerPlan& l : c->layers) {
    std::printf("%-6lld %6zu/%-8lld %4zu/%lld\n", static_cast<long long>(l.layer), l.att_kept.size(),
                static_cast<long long>(l.att_total), l.mlp_kept.size(), static_cast<long long>(l.mlp_total));
  }
  auto pct = [](int64_t a, int64_t b) { return b > 0 ? 100.0 * static_cast<double>(a) / static_cast<double>(b) : 0.0; };
  std::printf("params kept: %.2f M total (%.0f%% of %.2f M), %.2f M per token (%.0f%% of %.2f M)\n",
              c->params_total / 1e6, pct(c->params_total, before->params_total), before->params_total / 1e6,
              c->params_active / 1e6, pct(c->params_active, before->params_active), before->params_active / 1e6);
  if (ppl_before) {
    std::printf("perplexity on %s: %.4f before, %.4f after (%lld tokens)\n", a.Get("eval").c_str(),
                ppl_before->perplexity, ppl_after->perplexity, static_cast<long long>(ppl_after->tokens));
  }
  return 0;
}

}  // namespace brickrt::cli
