// brick run's options and output.
#include "cli/device_option.h"
#include "cli/run_args.h"

#include <cstdio>

#include "cli/model_tokenizer.h"
#include "cli/registry_access.h"
#include "core/json.h"
#include "core/system.h"

namespace brickrt::cli {
namespace {

// Generated ids as text for people and JSON: valid UTF-8, an unfinished character as U+FFFD.
std::string TextOf(const Tokenizer& t, const std::vector<int32_t>& ids) {
  StreamDecoder d(t);
  std::string text;
  for (int32_t id : ids) {
    auto piece = d.Next(id);
    text += piece.ok() ? *piece : "\xef\xbf\xbd";  // an id outside the tokenizer: U+FFFD
  }
  return text + d.Finish();
}

JsonValue StringsToJson(const std::vector<std::string>& v) {
  JsonValue arr = JsonValue::MakeArray();
  for (const std::string& s : v) arr.Append(JsonValue::String(s));
  return arr;
}

JsonValue IdsToJson(const std::vector<int32_t>& ids) {
  JsonValue arr = JsonValue::MakeArray();
  for (int32_t id : ids) arr.Append(JsonValue::Int(id));
  return arr;
}

}  // namespace

void PrintResult(const RunArgs& r, const GenerateResult& g, double load_seconds, const std::string& manifest,
                 bool streamed) {
  const double prefill_tps = g.prefill_seconds > 0 ? static_cast<double>(g.prefill_tokens) / g.prefill_seconds : 0;
  const double decode_tps = g.decode_seconds > 0 ? static_cast<double>(g.decode_tokens) / g.decode_seconds : 0;
  if (r.json) {
    JsonValue o = JsonValue::MakeObject();
    int64_t n_prompt = 0;
    for (const auto& p : r.prompts) n_prompt += static_cast<int64_t>(p.size());
    if (!manifest.empty()) o.Set("manifest", JsonValue::String(manifest));
    o.Set("prompt_tokens", JsonValue::Int(n_prompt));
    // One prompt: flat id lists; several: one list per prompt, in order.
    if (r.prompts.size() == 1) {
      o.Set("prompt", IdsToJson(r.prompts[0]));
      o.Set("generated", IdsToJson(g.generated[0]));
    } else {
      JsonValue ps = JsonValue::MakeArray(), gs = JsonValue::MakeArray();
      for (size_t i = 0; i < r.prompts.size(); ++i) {
        ps.Append(IdsToJson(r.prompts[i]));
        gs.Append(IdsToJson(g.generated[i]));
      }
      o.Set("prompt", std::move(ps));
      o.Set("generated", std::move(gs));
    }
    int64_t n_generated = 0;
    for (const auto& ids : g.generated) n_generated += static_cast<int64_t>(ids.size());
    o.Set("generated_tokens", JsonValue::Int(n_generated));
    if (r.tokenizer && !r.prompt_texts.empty()) {
      JsonValue texts = JsonValue::MakeArray();
      for (const auto& ids : g.generated) texts.Append(JsonValue::String(TextOf(*r.tokenizer, ids)));
      const bool one = r.prompts.size() == 1;
      o.Set("prompt_text", one ? JsonValue::String(r.prompt_texts[0]) : StringsToJson(r.prompt_texts));
      o.Set("text", one ? texts.as_array()[0] : std::move(texts));
    }
    o.Set("prefill_tokens_per_s", JsonValue::Number(prefill_tps));
    o.Set("decode_tokens_per_s", JsonValue::Number(decode_tps));
    o.Set("load_seconds", JsonValue::Number(load_seconds));
    o.Set("peak_rss_bytes", JsonValue::Int(PeakResidentBytes()));
    o.Set("rss_anon_bytes", JsonValue::Int(ResidentAnonBytes()));
    std::printf("%s\n", DumpJson(o).c_str());
    return;
  }
  for (size_t i = 0; i < g.generated.size() && !streamed; ++i) {
    if (g.generated.size() > 1) std::printf("[%zu] ", i);
    if (r.tokenizer && !r.prompt_texts.empty()) {
      std::printf("%s\n", TextOf(*r.tokenizer, g.generated[i]).c_str());
      continue;
    }
    for (size_t j = 0; j < g.generated[i].size(); ++j) std::printf("%s%d", j ? " " : "", g.generated[i][j]);
    std::printf("\n");
  }
  std::fprintf(
      stderr, "load %.2f s | prefill %lld tokens, %.1f tok/s | decode %lld tokens, %.1f tok/s | %.0f MiB resident\n",
      load_seconds, static_cast<long long>(g.prefill_tokens), prefill_tps, static_cast<long long>(g.decode_tokens),
      decode_tps, static_cast<double>(ResidentAnonBytes()) / (1 << 20));
}

Status ReadModelSource(const ArgParser& a, RunArgs* out) {
  RunArgs& r = *out;
  if (r.checkpoint.empty()) r.checkpoint = a.Get("checkpoint");
  if (const auto source = a.GetPositional(0)) {
    if (!r.checkpoint.empty()) return InvalidArgument("give either MODEL or --checkpoint DIR, not both");
    // A directory is a checkpoint, a file a submodel spec; anything else is a registry reference
    // (NAME, NAME@V, NAME:TAG — none of which may contain '/', so a mistyped path is not taken for one).
    const ModelSourceRef m = ClassifyModelSource(*source);
    r.checkpoint = m.checkpoint;
    r.spec = m.spec;  // a missing spec file is reported by the spec reader, naming the path
    r.model_ref = m.model_ref;
  }
  BRICK_ASSIGN_OR_RETURN(r.device, ReadDeviceOption(a));
  if (r.device && !r.server.empty())
    return InvalidArgument("--device places a model this process loads; the coordinator's model runs where its spec says");
  if (r.checkpoint.empty() && r.model_ref.empty() && r.spec.empty() && r.server.empty()) {
    return InvalidArgument(
        "say what to run: a registry model (brick run NAME[:TAG|@VERSION]), a submodel spec (brick run SPEC.yaml), "
        "--checkpoint DIR or --server ENDPOINT");
  }
  return Status::Ok();
}

Result<RunArgs> ReadArgs(const ArgParser& a) {
  RunArgs r;
  r.checkpoint = a.Get("checkpoint");
  r.server = a.Get("server");
  BRICK_ASSIGN_OR_RETURN(r.timeout_ms, a.GetInt("timeout-ms", 60000));
  if (r.timeout_ms < 1) return InvalidArgument("--timeout-ms must be >= 1");
  if (!r.server.empty() && (a.GetPositional(0) || !r.checkpoint.empty() || a.Has("trace") || a.Has("dump-logits"))) {
    return InvalidArgument(
        "--server runs on the coordinator's model: give no MODEL, --checkpoint, --trace or --dump-logits with it");
  }
  BRICK_RETURN_IF_ERROR(ReadModelSource(a, &r));
  const auto token_lists = a.GetAll("tokens");
  r.prompt_texts = a.GetAll("prompt");
  if (token_lists.empty() == r.prompt_texts.empty())
    return InvalidArgument("give the prompt as --tokens IDS (e.g. --tokens 11,42,7) or as --prompt TEXT, one of them");
  if (a.Has("tokenizer")) {
    BRICK_ASSIGN_OR_RETURN(Tokenizer t, Tokenizer::Load(a.Get("tokenizer")));
    r.tokenizer = std::move(t);
  } else if (!r.prompt_texts.empty() && r.server.empty()) {
    // The model's own tokenizer; a registry ref is pinned to the manifest it resolved to, so the
    // model loaded later is the one this tokenizer belongs to.
    BRICK_ASSIGN_OR_RETURN(ModelTokenizer mt, LoadModelTokenizer(a, {r.checkpoint, r.spec, r.model_ref}));
    if (!mt.tokenizer) {
      return InvalidArgument("--prompt needs a tokenizer, and " + mt.label + " has none; " + NoTokenizerAdvice() +
                             "; or give token ids with --tokens");
    }
    r.tokenizer = std::move(mt.tokenizer);
    if (!r.model_ref.empty()) r.model_ref = mt.manifest;
  }
  if (!r.prompt_texts.empty() && !r.tokenizer) {
    return InvalidArgument(
        "--prompt needs a tokenizer: pass --tokenizer PATH (tokenizer.json, or a directory with vocab.json + "
        "merges.txt), or give token ids with --tokens");
  }
  for (const std::string& text : r.prompt_texts) {
    r.prompts.push_back(r.tokenizer->Encode(text));
    if (r.prompts.back().empty()) return InvalidArgument("--prompt is empty");
  }
  for (const std::string& list : token_lists) {
    BRICK_ASSIGN_OR_RETURN(auto ids, ParseIntList(list, "--tokens"));
    std::vector<int32_t> prompt;
    for (int64_t id : ids) {
      if (id < 0 || id > INT32_MAX) return InvalidArgument("--tokens: " + std::to_string(id) + " is not a token id");
      prompt.push_back(static_cast<int32_t>(id));
    }
    r.prompts.push_back(std::move(prompt));
  }
  BRICK_ASSIGN_OR_RETURN(r.gen.max_new_tokens, a.GetInt("n", 16));
  BRICK_ASSIGN_OR_RETURN(double temp, a.GetDouble("temp", 1.0));
  BRICK_ASSIGN_OR_RETURN(int64_t top_k, a.GetInt("top-k", 0));
  BRICK_ASSIGN_OR_RETURN(double top_p, a.GetDouble("top-p", 1.0));
  BRICK_ASSIGN_OR_RETURN(int64_t seed, a.GetInt("seed", 0));
  BRICK_ASSIGN_OR_RETURN(int64_t threads, a.GetInt("threads", 0));
  if (r.gen.max_new_tokens < 0 || r.gen.max_new_tokens > (int64_t{1} << 24))
    return InvalidArgument("-n must be in [0, 16777216]");
  if (threads < 0 || threads > 1024) return InvalidArgument("--threads must be in [0, 1024] (0: all cores)");
  if (top_k < 0 || top_k > INT32_MAX) return InvalidArgument("--top-k must be >= 0");
  r.gen.sampling = SamplingParams{static_cast<float>(temp), static_cast<int>(top_k), static_cast<float>(top_p),
                                  static_cast<uint64_t>(seed)};
  BRICK_RETURN_IF_ERROR(ValidateSampling(r.gen.sampling));
  r.gen.stop_at_eos = !a.Has("ignore-eos");
  r.threads = static_cast<int>(threads);
  r.dump_logits = a.Get("dump-logits");
  r.trace = a.Get("trace");
  if (!r.dump_logits.empty() && r.prompts.size() != 1)
    return InvalidArgument("--dump-logits needs exactly one prompt");
  r.json = a.Has("json");
  return r;
}


void AddRunOptions(ArgParser& a) {
  a.Positional("MODEL", "registry model reference, a submodel spec file, or a checkpoint directory");
  a.Option("checkpoint", "DIR", "checkpoint directory");
  AddRegistryOption(a);
  a.Option("tokens", "IDS", "prompt token ids, comma-separated; repeat for a batch", "", /*repeatable=*/true);
  a.Option("prompt", "TEXT", "prompt as text (needs a tokenizer); repeat for a batch", "", /*repeatable=*/true);
  a.Option("tokenizer", "PATH", "tokenizer.json, or a directory with tokenizer.json or vocab.json + merges.txt");
  a.Option("n", "N", "new tokens per prompt (default 16; 0: prefill only)", "-n");
  a.Option("temp", "T", "sampling temperature; 0 = greedy (default 1.0)");
  a.Option("top-k", "K", "sample among the K most likely tokens; 0 = off (default 0)");
  a.Option("top-p", "P", "nucleus sampling mass in (0, 1]; 1 = off (default 1)");
  a.Option("seed", "S", "sampling seed; prompt i uses S+i (default 0)");
  a.Option("threads", "N", "worker threads, 0 = every core this process may use (default 0)");
  AddDeviceOption(a);
  a.Option("dump-logits", "FILE.npy", "write the logits of every prompt position as float32 [T, vocab]");
  a.Option("trace", "FILE.jsonl", "one line per token per layer: experts, gates, where each ran, digests, block time");
  a.Flag("ignore-eos", "keep generating after the end-of-sequence token");
  a.Flag("json", "print one JSON object: manifest, prompt_tokens, prompt, generated, *_tokens_per_s");
  a.Option("server", "ENDPOINT", "generate on a coordinator (brick serve, role: coordinator) instead of loading a model");
  a.Option("timeout-ms", "MS", "with --server: how long to wait for each reply (default 60000)");
}

void TextStream::Token(int32_t id) {
  auto piece = decoder_.Next(id);
  std::fputs(piece.ok() ? piece->c_str() : "\xef\xbf\xbd", stdout);
  std::fflush(stdout);
}

void TextStream::Finish() {
  std::printf("%s\n", decoder_.Finish().c_str());
  std::fflush(stdout);
}

}  // namespace brickrt::cli
