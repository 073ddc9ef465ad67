// brick make-test-model: a random ModuleFormer checkpoint in HF layout, for tests, demos, benchmarks.
#include <cstdio>

#include "cli/args.h"
#include "cli/commands.h"
#include "core/system.h"
#include "registry/test_model.h"
#include "registry/tokenizer_files.h"

namespace brickrt::cli {
namespace {

// "--attn-experts 8" (every layer) or "--attn-experts 8,6,8,4" (one count per layer).
Status ExpertCounts(const ArgParser& a, const std::string& name, int64_t layers, int64_t* uniform,
                    std::vector<int64_t>* per_layer) {
  if (!a.Has(name)) return Status::Ok();
  BRICK_ASSIGN_OR_RETURN(auto counts, ParseIntList(a.Get(name), "--" + name));
  for (int64_t c : counts)
    if (c < 1) return InvalidArgument("--" + name + ": expert counts must be >= 1");
  if (counts.size() == 1) {
    *uniform = counts[0];
    return Status::Ok();
  }
  if (static_cast<int64_t>(counts.size()) != layers)
    return InvalidArgument("--" + name + ": " + std::to_string(counts.size()) + " counts given for " +
                           std::to_string(layers) + " layers");
  *per_layer = counts;
  return Status::Ok();
}

}  // namespace

int MakeTestModelCommand(const std::vector<std::string>& args) {
  const char* cmd = "make-test-model";
  ArgParser a(cmd, "DIR [options]",
              "Writes config.json + model.safetensors of a ModuleFormer model with random weights (deterministic\n"
              "for a seed). Expert counts may differ per layer, like a pruned or grown checkpoint.");
  a.Positional("DIR", "output directory (created if missing)");
  a.Option("layers", "N", "number of layers (default 4)");
  a.Option("d-model", "D", "hidden size = attention expert width (default 256)");
  a.Option("ffd-hidden", "F", "MLP expert width (default 2·D)");
  a.Option("attn-experts", "E|E1,E2,..", "attention experts, for all layers or per layer (default 8)");
  a.Option("mlp-experts", "E|E1,E2,..", "MLP experts, for all layers or per layer (default 16)");
  a.Option("k-att", "K", "attention experts per token (default 2)");
  a.Option("k-mlp", "K", "MLP experts per token (default 2)");
  a.Option("gating-size", "G", "router hidden width (default 64)");
  a.Option("vocab", "V", "vocabulary size (default 1000)");
  a.Option("dtype", "bf16|f16|f32", "weight dtype (default bf16)");
  a.Option("seed", "S", "random seed (default 1)");
  a.Option("tokenizer", "PATH",
           "copy this tokenizer's files into DIR (tokenizer.json, or a directory with it or vocab.json +\n"
           "merges.txt); --vocab must be at least its size (GPT-2's: 50257; MoLM's: 50295)");
  if (const auto exit_code = a.ParseOrExit(args)) return *exit_code;
  const auto dir = a.GetPositional(0);
  if (!dir) return Fail(cmd, "missing output directory (usage: brick make-test-model DIR)", 2);

  TestModelOptions o;
  Status st = [&]() -> Status {
    BRICK_ASSIGN_OR_RETURN(int64_t layers, a.GetInt("layers", o.layers));
    BRICK_ASSIGN_OR_RETURN(o.d_model, a.GetInt("d-model", o.d_model));
    BRICK_ASSIGN_OR_RETURN(o.ffd_hidden, a.GetInt("ffd-hidden", 2 * o.d_model));
    BRICK_ASSIGN_OR_RETURN(int64_t k_att, a.GetInt("k-att", o.k_att));
    BRICK_ASSIGN_OR_RETURN(int64_t k_mlp, a.GetInt("k-mlp", o.k_mlp));
    BRICK_ASSIGN_OR_RETURN(o.gating_size, a.GetInt("gating-size", o.gating_size));
    BRICK_ASSIGN_OR_RETURN(o.vocab, a.GetInt("vocab", o.vocab));
    BRICK_ASSIGN_OR_RETURN(int64_t seed, a.GetInt("seed", static_cast<int64_t>(o.seed)));
    if (layers < 1 || layers > 4096) return InvalidArgument("--layers must be in [1, 4096]");
    if (o.d_model < 1 || o.d_model > 65536 || o.ffd_hidden < 1 || o.ffd_hidden > 262144 || o.gating_size < 1 ||
        o.gating_size > 65536 || o.vocab < 1 || o.vocab > (int64_t{1} << 24))
      return InvalidArgument("sizes must be >= 1 and at most: --d-model 65536, --ffd-hidden 262144, --gating-size 65536, "
                             "--vocab 16777216");
    if (k_att < 1 || k_att > 65536 || k_mlp < 1 || k_mlp > 65536)
      return InvalidArgument("--k-att and --k-mlp must be in [1, 65536]");
    o.layers = static_cast<int>(layers);
    o.k_att = static_cast<int>(k_att);
    o.k_mlp = static_cast<int>(k_mlp);
    o.seed = static_cast<uint64_t>(seed);
    BRICK_RETURN_IF_ERROR(ExpertCounts(a, "attn-experts", layers, &o.attn_experts, &o.attn_experts_per_layer));
    BRICK_RETURN_IF_ERROR(ExpertCounts(a, "mlp-experts", layers, &o.mlp_experts, &o.mlp_experts_per_layer));
    if (a.Has("dtype")) {
      auto dt = ParseDType(a.Get("dtype"));
      if (!dt) return InvalidArgument("--dtype: '" + a.Get("dtype") + "' is not one of bf16, f16, f32");
      o.dtype = *dt;
    }
    return Status::Ok();
  }();
  if (!st.ok()) return Fail(cmd, st.message(), 2);
  // The generator holds the whole model in memory before writing it.
  const auto count = [](int64_t uniform, const std::vector<int64_t>& per_layer, int64_t layer) {
    return per_layer.empty() ? uniform : per_layer[static_cast<size_t>(layer)];
  };
  double params = 2.0 * static_cast<double>(o.vocab) * static_cast<double>(o.d_model);
  for (int64_t l = 0; l < o.layers; ++l) {
    params += 2.0 * static_cast<double>(o.d_model) *
              (static_cast<double>(count(o.attn_experts, o.attn_experts_per_layer, l)) * static_cast<double>(o.d_model) +
               static_cast<double>(count(o.mlp_experts, o.mlp_experts_per_layer, l)) * static_cast<double>(o.ffd_hidden));
  }
  const double bytes = params * static_cast<double>(DTypeSize(o.dtype));
  if (const int64_t mem = PhysicalMemoryBytes(); mem > 0 && bytes > 0.8 * static_cast<double>(mem)) {
    return Fail(cmd, "the model would take " + std::to_string(static_cast<int64_t>(bytes) >> 20) + " MiB, more than " +
                         "this machine can hold in memory (" + std::to_string(mem >> 20) + " MiB)", 2);
  }
  TokenizerFiles tokenizer;
  if (a.Has("tokenizer")) {
    auto files = ReadTokenizerFiles(a.Get("tokenizer"));
    if (!files.ok()) return Fail(cmd, files.status().message());
    if (!*files) return Fail(cmd, "--tokenizer " + a.Get("tokenizer") + " holds no tokenizer files", 2);
    auto tok = BuildTokenizer(**files, a.Get("tokenizer"));
    if (!tok.ok()) return Fail(cmd, tok.status().message());
    if (tok->vocab_size() > o.vocab) {
      return Fail(cmd, "--tokenizer has " + std::to_string(tok->vocab_size()) + " tokens; give --vocab " +
                           std::to_string(tok->vocab_size()) + " or more", 2);
    }
    tokenizer = std::move(**files);
  }
  if (Status w = MakeTestModel(*dir, o); !w.ok()) return Fail(cmd, w.ToString());
  if (Status w = WriteTokenizerFiles(*dir, tokenizer); !w.ok()) return Fail(cmd, w.ToString());
  std::printf("wrote %s (%d layers, d_model %lld, %s)\n", dir->c_str(), o.layers, static_cast<long long>(o.d_model),
              DTypeName(o.dtype));
  return 0;
}

}  // namespace brickrt::cli
