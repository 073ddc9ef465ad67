// brick eval: perplexity of a model over a token file, with a sliding window (docs/profiling.md).
#include <cstdio>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/device_option.h"
#include "cli/eval_common.h"
#include "cli/registry_access.h"
#include "core/json.h"
#include "core/system.h"

namespace brickrt::cli {
namespace {

constexpr const char* kCmd = "eval";

}  // namespace

int EvalCommand(const std::vector<std::string>& args) {
  ArgParser a(kCmd, "MODEL --data FILE [--json] [--context N] [--stride S]",
              "Perplexity of a registry model (NAME, NAME@VERSION, NAME:TAG) or a submodel spec (SPEC.yaml) over\n"
              "token data: FILE.ids / FILE.tokens (token ids separated by whitespace or commas, one document per\n"
              "line, all concatenated) or a 1-D int32/int64 FILE.npy. Data longer than --context is read in\n"
              "windows advancing by --stride; every token after the first is scored once. Text files need a\n"
              "tokenizer (not yet carried by models).");
  a.Positional("MODEL", "registry model reference or submodel spec file");
  AddRegistryOption(a);
  a.Option("data", "FILE", "token ids (.ids, .tokens, .npy) or text (any other file; needs the model's tokenizer)");
  AddWindowOptions(a);
  a.Option("threads", "N", "worker threads, 0 = every usable core (default 0)");
  AddDeviceOption(a);
  a.Flag("json", "print one JSON object: model, tokens, nll, perplexity, tokens_per_s, ...");
  if (const auto exit_code = a.ParseOrExit(args)) return *exit_code;
  const auto ref = a.GetPositional(0);
  if (!ref) return Fail(kCmd, "say which model to evaluate: brick eval MODEL --data FILE", 2);
  if (!a.Has("data")) return Fail(kCmd, "--data FILE is required (.ids, .tokens or .npy token ids)", 2);
  auto opts = WindowOptions(a);
  if (!opts.ok()) return Fail(kCmd, opts.status().message(), 2);
  auto threads = a.GetInt("threads", 0);
  if (!threads.ok() || *threads < 0 || *threads > 1024) return Fail(kCmd, "--threads must be in [0, 1024]", 2);
  auto device = ReadDeviceOption(a);
  if (!device.ok()) return Fail(kCmd, device.status().message(), 2);
  const std::unique_ptr<SplitPlan> plan = WholeModelOn(*device);

  auto reg = OpenRegistry(a, /*writes=*/false);
  if (!reg.ok()) return Fail(kCmd, reg.status().message());
  auto m = LoadMeasuredModel(**reg, *ref);
  if (!m.ok()) return Fail(kCmd, m.status().message());
  auto data = ReadData(a.Get("data"), m->model->config(), m->tokenizer ? &*m->tokenizer : nullptr);
  if (!data.ok()) return Fail(kCmd, data.status().message());

  ThreadPool pool(*threads == 0 ? UsableCores() : static_cast<int>(*threads));
  opts->pool = &pool;
  opts->plan = plan.get();
  opts->progress = ProgressBar("eval " + m->label);
  auto r = EvaluatePerplexity(m->model, data->ids, *opts);
  FinishProgress(opts->progress);
  if (!r.ok()) return Fail(kCmd, a.Get("data") + ": " + r.status().message());
  const double tps = r->seconds > 0 ? static_cast<double>(r->tokens) / r->seconds : 0;
  if (a.Has("json")) {
    JsonValue o = JsonValue::MakeObject();
    o.Set("model", JsonValue::String(m->label));
    o.Set("data", JsonValue::String(data->path));
    o.Set("data_digest", JsonValue::String(data->digest));
    o.Set("tokens", JsonValue::Int(r->tokens));
    o.Set("nll", JsonValue::Number(r->nll));
    o.Set("perplexity", JsonValue::Number(r->perplexity));
    o.Set("tokens_per_s", JsonValue::Number(tps));
    o.Set("context", JsonValue::Int(opts->context));
    o.Set("stride", JsonValue::Int(opts->stride));
    o.Set("windows", JsonValue::Int(r->windows));
    o.Set("seconds", JsonValue::Number(r->seconds));
    std::printf("%s\n", DumpJson(o).c_str());
    return 0;
  }
  std::printf("%s on %s: perplexity %.4f (nll %.4f nats/token) over %lld tokens, %lld window(s), %.1f tok/s\n",
              m->label.c_str(), data->path.c_str(), r->perplexity, r->nll, static_cast<long long>(r->tokens),
              static_cast<long long>(r->windows), tps);
  return 0;
}

}  // namespace brickrt::cli
