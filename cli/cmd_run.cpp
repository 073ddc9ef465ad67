// brick run: load a checkpoint, prefill one or more prompts together, generate, report speed.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include "bricks/generator.h"
#include "bricks/model.h"
#include "bricks/session.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "core/json.h"
#include "core/npy.h"
#include "registry/hf_checkpoint.h"

namespace brickrt::cli {
namespace {

constexpr const char* kCmd = "run";

struct RunArgs {
  std::string checkpoint;
  std::vector<std::vector<int32_t>> prompts;
  GenerateOptions gen;
  int threads = 0;
  std::string dump_logits;
  bool json = false;
};

Result<RunArgs> ReadArgs(const ArgParser& a) {
  RunArgs r;
  r.checkpoint = a.Get("checkpoint");
  if (r.checkpoint.empty()) return InvalidArgument("--checkpoint DIR is required");
  const auto token_lists = a.GetAll("tokens");
  if (token_lists.empty()) return InvalidArgument("--tokens IDS is required (e.g. --tokens 11,42,7)");
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
  if (r.gen.max_new_tokens < 0) return InvalidArgument("-n must be >= 0");
  if (threads < 0 || threads > 1024) return InvalidArgument("--threads must be in [0, 1024] (0: all cores)");
  if (top_k < 0 || top_k > INT32_MAX) return InvalidArgument("--top-k must be >= 0");
  r.gen.sampling = SamplingParams{static_cast<float>(temp), static_cast<int>(top_k), static_cast<float>(top_p),
                                  static_cast<uint64_t>(seed)};
  BRICK_RETURN_IF_ERROR(ValidateSampling(r.gen.sampling));
  r.gen.stop_at_eos = !a.Has("ignore-eos");
  r.threads = static_cast<int>(threads);
  r.dump_logits = a.Get("dump-logits");
  if (!r.dump_logits.empty() && r.prompts.size() != 1)
    return InvalidArgument("--dump-logits needs exactly one --tokens prompt");
  r.json = a.Has("json");
  return r;
}

// Logits of every prompt position, as float32 [T, vocab].
Status DumpLogits(Session& session, const std::vector<int32_t>& prompt, const std::string& path) {
  BRICK_ASSIGN_OR_RETURN(int seq, session.AddSequence());
  const int64_t V = session.model().config().vocab_size, T = static_cast<int64_t>(prompt.size());
  std::vector<float> logits(static_cast<size_t>(T * V));
  const SequenceChunk chunk{seq, prompt};
  Status st = session.Forward({&chunk, 1}, /*all_positions=*/true, logits.data());
  session.RemoveSequence(seq);
  BRICK_RETURN_IF_ERROR(st);
  return WriteNpyF32(path, logits.data(), {T, V});
}

JsonValue IdsToJson(const std::vector<int32_t>& ids) {
  JsonValue arr = JsonValue::MakeArray();
  for (int32_t id : ids) arr.Append(JsonValue::Int(id));
  return arr;
}

void PrintResult(const RunArgs& r, const GenerateResult& g, double load_seconds) {
  const double prefill_tps = g.prefill_seconds > 0 ? static_cast<double>(g.prefill_tokens) / g.prefill_seconds : 0;
  const double decode_tps = g.decode_seconds > 0 ? static_cast<double>(g.decode_tokens) / g.decode_seconds : 0;
  if (r.json) {
    JsonValue o = JsonValue::MakeObject();
    int64_t n_prompt = 0;
    for (const auto& p : r.prompts) n_prompt += static_cast<int64_t>(p.size());
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
    o.Set("prefill_tokens_per_s", JsonValue::Number(prefill_tps));
    o.Set("decode_tokens_per_s", JsonValue::Number(decode_tps));
    o.Set("load_seconds", JsonValue::Number(load_seconds));
    std::printf("%s\n", DumpJson(o).c_str());
    return;
  }
  for (size_t i = 0; i < g.generated.size(); ++i) {
    if (g.generated.size() > 1) std::printf("[%zu] ", i);
    for (size_t j = 0; j < g.generated[i].size(); ++j) std::printf("%s%d", j ? " " : "", g.generated[i][j]);
    std::printf("\n");
  }
  std::fprintf(stderr, "load %.2f s | prefill %lld tokens, %.1f tok/s | decode %lld tokens, %.1f tok/s\n", load_seconds,
               static_cast<long long>(g.prefill_tokens), prefill_tps, static_cast<long long>(g.decode_tokens),
               decode_tps);
}

}  // namespace

int RunCommand(const std::vector<std::string>& args) {
  ArgParser a(kCmd, "--checkpoint DIR --tokens IDS [options]",
              "Generates tokens from a ModuleFormer checkpoint (HF layout: config.json + model.safetensors or a\n"
              "sharded model.safetensors.index.json). Several --tokens prompts run as one batch. Generated ids go\n"
              "to stdout, speed to stderr (or everything as one JSON object with --json).");
  a.Option("checkpoint", "DIR", "checkpoint directory");
  a.Option("tokens", "IDS", "prompt token ids, comma-separated; repeat for a batch", "", /*repeatable=*/true);
  a.Option("n", "N", "new tokens per prompt (default 16; 0: prefill only)", "-n");
  a.Option("temp", "T", "sampling temperature; 0 = greedy (default 1.0)");
  a.Option("top-k", "K", "sample among the K most likely tokens; 0 = off (default 0)");
  a.Option("top-p", "P", "nucleus sampling mass in (0, 1]; 1 = off (default 1)");
  a.Option("seed", "S", "sampling seed; prompt i uses S+i (default 0)");
  a.Option("threads", "N", "worker threads, 0 = all cores (default 0)");
  a.Option("dump-logits", "FILE.npy", "write the logits of every prompt position as float32 [T, vocab]");
  a.Flag("ignore-eos", "keep generating after the end-of-sequence token");
  a.Flag("json", "print one JSON object: prompt_tokens, prompt, generated, *_tokens_per_s");
  if (Status st = a.Parse(args); !st.ok()) return Fail(kCmd, st.message(), 2);
  if (a.help_requested()) {
    std::printf("%s", a.Help().c_str());
    return 0;
  }
  auto parsed = ReadArgs(a);
  if (!parsed.ok()) return Fail(kCmd, parsed.status().message(), 2);
  const RunArgs& r = *parsed;

  const auto t0 = std::chrono::steady_clock::now();
  const bool tty = isatty(STDERR_FILENO) != 0;  // progress lines only for a person watching
  if (tty) std::fprintf(stderr, "loading %s ...\n", r.checkpoint.c_str());
  auto ckpt = LoadHfCheckpoint(r.checkpoint);
  if (!ckpt.ok()) return Fail(kCmd, ckpt.status().message());
  if (tty) std::fprintf(stderr, "%s\n", ckpt->description.c_str());
  auto model = Model::Build(ckpt->config, std::move(ckpt->bricks));
  if (!model.ok()) return Fail(kCmd, r.checkpoint + ": " + model.status().message());
  const double load_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  ThreadPool pool(r.threads == 0 ? static_cast<int>(std::thread::hardware_concurrency()) : r.threads);
  SessionOptions so;
  so.max_sequences = static_cast<int>(r.prompts.size());
  int64_t longest = 0, total = 0;
  for (const auto& p : r.prompts) {
    longest = std::max<int64_t>(longest, static_cast<int64_t>(p.size()));
    total += static_cast<int64_t>(p.size());
  }
  so.max_context = longest + r.gen.max_new_tokens;
  so.max_step_tokens = std::max<int64_t>(total, static_cast<int64_t>(r.prompts.size()));
  Session session(*model, so, &pool);

  if (!r.dump_logits.empty()) {
    if (Status st = DumpLogits(session, r.prompts[0], r.dump_logits); !st.ok()) return Fail(kCmd, st.message());
  }
  auto result = Generate(session, r.prompts, r.gen);
  if (!result.ok()) return Fail(kCmd, result.status().message());
  PrintResult(r, *result, load_seconds);
  return 0;
}

int Fail(const std::string& command, const std::string& message, int code) {
  std::fprintf(stderr, "brick %s: error: %s\n", command.c_str(), message.c_str());
  return code;
}

}  // namespace brickrt::cli
