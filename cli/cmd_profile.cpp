// brick profile: which experts the tokens of some data choose, per layer and kind, stored in the
// registry under a name (docs/profiling.md).
#include <cstdio>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/device_option.h"
#include "cli/eval_common.h"
#include "cli/profile_plot.h"
#include "cli/profile_sink.h"
#include "cli/registry_access.h"
#include "core/json.h"
#include "core/system.h"

namespace brickrt::cli {
namespace {

constexpr const char* kCmd = "profile";

void PrintTable(const ExpertProfile& p, int k_att, int k_mlp) {
  std::printf("profile %s: %s on %s, %lld tokens routed\n", p.name.c_str(), p.manifest.c_str(), p.data_path.c_str(),
              static_cast<long long>(p.tokens));
  std::printf("layer  kind  top-k  chosen per expert (share of the busiest, %%)\n");
  for (const LayerProfile& l : p.layers) {
    int64_t max_count = 0;
    for (int64_t c : l.counts) max_count = std::max(max_count, c);
    std::printf("%-6lld %-5s %-6d", static_cast<long long>(l.layer), l.attention ? "attn" : "mlp",
                l.attention ? k_att : k_mlp);
    for (int64_t c : l.counts)
      std::printf(" %3lld", static_cast<long long>(max_count > 0 ? (100 * c + max_count / 2) / max_count : 0));
    std::printf("\n");
  }
}

}  // namespace

int ProfileCommand(const std::vector<std::string>& args) {
  ArgParser a(kCmd, "MODEL --data FILE --save NAME [--json] [--plot FILE.png] [--context N]",
              "Runs a registry model (NAME, NAME@VERSION, NAME:TAG) over token data and counts, per layer and\n"
              "expert (attention and MLP), how many tokens chose it (top-k routing) and the gate mass it got.\n"
              "The profile is stored in the registry as NAME (replacing one of that name) with the manifest it\n"
              "was measured on and the data's SHA-256; `brick prune --profile NAME` and a spec's\n"
              "`keep: {profile: NAME, threshold: T}` use it. Data as for `brick eval`.");
  a.Positional("MODEL", "registry model reference");
  AddRegistryOption(a);
  a.Option("data", "FILE", "token ids (.ids, .tokens, .npy) or text (any other file; needs the model's tokenizer)");
  a.Option("save", "NAME", "store the profile under this name");
  a.Option("plot", "FILE.png", "write a heatmap (layers x experts, one panel per kind)");
  a.Option("context", "N", "tokens per window; windows do not overlap (default 1024)");
  a.Option("threads", "N", "worker threads, 0 = every usable core (default 0)");
  AddDeviceOption(a);
  a.Flag("json", "print {model, profile, data, data_digest, tokens, layers: [{layer, kind, counts, gate_mass}]}");
  if (const auto exit_code = a.ParseOrExit(args)) return *exit_code;
  const auto ref = a.GetPositional(0);
  if (!ref) return Fail(kCmd, "say which model to profile: brick profile MODEL --data FILE --save NAME", 2);
  if (!a.Has("data")) return Fail(kCmd, "--data FILE is required (.ids, .tokens or .npy token ids)", 2);
  if (!a.Has("save")) return Fail(kCmd, "--save NAME is required (the name brick prune --profile uses)", 2);
  auto context = a.GetInt("context", 1024);
  if (!context.ok() || *context < 2 || *context > (int64_t{1} << 20))
    return Fail(kCmd, "--context must be in [2, 1048576]", 2);
  auto threads = a.GetInt("threads", 0);
  if (!threads.ok() || *threads < 0 || *threads > 1024) return Fail(kCmd, "--threads must be in [0, 1024]", 2);
  auto device = ReadDeviceOption(a);
  if (!device.ok()) return Fail(kCmd, device.status().message(), 2);
  const std::unique_ptr<SplitPlan> plan = WholeModelOn(*device);

  auto reg = OpenRegistry(a, /*writes=*/true);
  if (!reg.ok()) return Fail(kCmd, reg.status().message());
  auto m = (*reg)->ResolveModel(*ref);
  if (!m.ok()) return Fail(kCmd, m.status().message());
  if (m->kind != ManifestKind::kModel) return Fail(kCmd, m->Ref() + " is a plugin, not a model");
  auto measured = LoadMeasuredModel(**reg, m->Ref());
  if (!measured.ok()) return Fail(kCmd, measured.status().message());
  const ModelConfig& cfg = measured->model->config();
  auto data = ReadData(a.Get("data"), cfg, measured->tokenizer ? &*measured->tokenizer : nullptr);
  if (!data.ok()) return Fail(kCmd, data.status().message());

  ThreadPool pool(*threads == 0 ? UsableCores() : static_cast<int>(*threads));
  ProfileSink sink(cfg);
  EvalOptions opts;
  opts.context = *context;
  opts.stride = *context;  // each token routed once (a window's first token is the previous one's last)
  opts.pool = &pool;
  opts.trace = &sink;
  opts.plan = plan.get();
  opts.progress = ProgressBar("profile " + m->Ref());
  auto r = EvaluatePerplexity(measured->model, data->ids, opts);
  FinishProgress(opts.progress);
  if (!r.ok()) return Fail(kCmd, a.Get("data") + ": " + r.status().message());

  ExpertProfile p;
  p.name = a.Get("save");
  p.manifest_id = m->id;
  p.manifest = m->Ref();
  p.data_path = data->path;
  p.data_digest = data->digest;
  p.tokens = sink.tokens();
  p.layers = sink.Layers();
  auto saved = (*reg)->SaveProfile(p);
  if (!saved.ok()) return Fail(kCmd, saved.status().message());
  if (a.Has("plot")) {
    Status st = WriteProfilePlot(*saved, cfg, a.Get("plot"));
    if (!st.ok()) return Fail(kCmd, st.message());
  }
  if (a.Has("json")) {
    JsonValue o = JsonValue::MakeObject();
    o.Set("profile", JsonValue::String(saved->name));
    o.Set("model", JsonValue::String(saved->manifest));
    o.Set("data", JsonValue::String(saved->data_path));
    o.Set("data_digest", JsonValue::String(saved->data_digest));
    o.Set("tokens", JsonValue::Int(saved->tokens));
    o.Set("perplexity", JsonValue::Number(r->perplexity));
    o.Set("layers", ProfileLayersToJson(saved->layers));
    std::printf("%s\n", DumpJson(o).c_str());
    return 0;
  }
  PrintTable(*saved, cfg.k_att, cfg.k_mlp);
  return 0;
}

}  // namespace brickrt::cli
