// brick make-test-lora: a random LoRA adapter in PEFT layout for a registry model, the plugin counterpart
// of make-test-model (demos and tests show plugins end to end without downloading an adapter).
#include <sys/stat.h>

#include <cmath>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/registry_access.h"
#include "registry/peft_adapter.h"
#include "registry/test_model.h"

namespace brickrt::cli {

int MakeTestLoraCommand(const std::vector<std::string>& args) {
  const char* cmd = "make-test-lora";
  const RandomLoraOptions defaults;
  ArgParser a(cmd, "DIR --base MODEL_REF [options]",
              "Writes adapter_config.json + adapter_model.safetensors of a LoRA adapter with random weights\n"
              "(deterministic for a seed) for the registry model MODEL_REF, in the layout `brick import-lora`\n"
              "reads. Unlike a fresh PEFT adapter (B = 0) the delta is random and visibly changes the logits.\n"
              "Experts a submodel removed are never targets. See docs/plugins.md.");
  a.Positional("DIR", "output directory (created; must be new or empty)");
  a.Option("base", "MODEL_REF", "the model the adapter is for: NAME, NAME@VERSION or NAME:TAG");
  a.Option(
      "targets", "GLOBS",
      "globs over targets (L0.attn.E3.wq|wo, L0.mlp.E3.w1|w2, lm_head.weight), default '" + defaults.targets + "'");
  a.Option("rank", "R", "LoRA rank (default 8)");
  a.Option("alpha", "A", "lora_alpha; the delta is scaled by A / R (default 16)");
  a.Option("dtype", "bf16|f16|f32", "dtype of lora_A and lora_B (default: the base model's)");
  a.Option("seed", "S", "random seed (default 1)");
  a.Option("form", "per-expert|stacked",
           "stacked: one [E, r, in] key for a module whose experts are all targets (default per-expert)");
  AddRegistryOption(a);
  if (const auto exit_code = a.ParseOrExit(args)) return *exit_code;
  const auto dir = a.GetPositional(0);
  if (!dir) return Fail(cmd, "missing output directory (usage: brick make-test-lora DIR --base MODEL_REF)", 2);
  const std::string base_ref = a.Get("base");
  if (base_ref.empty()) return Fail(cmd, "--base MODEL_REF is required (the model the adapter is for)", 2);

  RandomLoraOptions o;
  bool stacked = false;
  std::optional<DType> dtype;
  Status st = [&]() -> Status {
    o.targets = a.Get("targets", o.targets);
    BRICK_ASSIGN_OR_RETURN(o.rank, a.GetInt("rank", o.rank));
    BRICK_ASSIGN_OR_RETURN(double alpha, a.GetDouble("alpha", o.alpha));
    BRICK_ASSIGN_OR_RETURN(int64_t seed, a.GetInt("seed", static_cast<int64_t>(o.seed)));
    if (o.rank < 1 || o.rank > 65536) return InvalidArgument("--rank must be in [1, 65536]");
    if (!std::isfinite(alpha) || std::fabs(alpha) > 1e6)
      return InvalidArgument("--alpha must be a number in [-1e6, 1e6]");
    o.alpha = static_cast<float>(alpha);
    o.seed = static_cast<uint64_t>(seed);
    if (a.Has("dtype")) {
      dtype = ParseDType(a.Get("dtype"));
      if (!dtype) return InvalidArgument("--dtype: '" + a.Get("dtype") + "' is not one of bf16, f16, f32");
    }
    const std::string form = a.Get("form", "per-expert");
    if (form != "per-expert" && form != "stacked")
      return InvalidArgument("--form: '" + form + "' is not one of per-expert, stacked");
    stacked = form == "stacked";
    return Status::Ok();
  }();
  if (!st.ok()) return Fail(cmd, st.message(), 2);

  auto reg = OpenRegistry(a, /*writes=*/false);
  if (!reg.ok()) return Fail(cmd, reg.status().message());
  auto base = (*reg)->ResolveModel(base_ref);
  if (!base.ok()) return Fail(cmd, "--base: " + base.status().message());
  if (base->kind != ManifestKind::kModel) {
    return Fail(cmd, "--base " + base_ref + " is " + base->Ref() + ", a " + ManifestKindName(base->kind) +
                         ", not a model; name the model the adapter is for");
  }
  o.dtype = dtype.value_or(base->config.dtype);
  auto loras = MakeRandomLoras(base->config, o);
  if (!loras.ok()) return Fail(cmd, loras.status().message(), 2);
  PeftWriteOptions w;
  w.stacked = stacked;
  w.base_model_name = base->Ref();
  if (Status ws = WritePeftAdapter(*dir, *loras, base->config, w); !ws.ok()) return Fail(cmd, ws.message());

  const std::string file = *dir + "/adapter_model.safetensors";
  struct stat sb {};
  const long long bytes = ::stat(file.c_str(), &sb) == 0 ? static_cast<long long>(sb.st_size) : -1;
  std::printf("wrote %s: %zu lora targets (%s) for %s, rank %lld, alpha %g, %s, %s form, %lld bytes of weights\n",
              dir->c_str(), loras->size(), o.targets.c_str(), base->Ref().c_str(), static_cast<long long>(o.rank),
              static_cast<double>(o.alpha), DTypeName(o.dtype), stacked ? "stacked" : "per-expert", bytes);
  return 0;
}

}  // namespace brickrt::cli
