// brick chat: an interactive loop over one growing conversation. Each line typed is appended as text
// (with its newline) and the model continues the conversation for up to -n tokens, streamed as text.
// The conversation lives in the session's KV cache, so a turn only runs the new tokens.
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <optional>
#include <string>

#include "bricks/sampler.h"
#include "bricks/session.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/device_option.h"
#include "cli/model_source.h"
#include "cli/model_tokenizer.h"
#include "cli/registry_access.h"
#include "cli/run_args.h"
#include "core/json.h"
#include "core/system.h"
#include "node/session_factory.h"

namespace brickrt::cli {
namespace {

constexpr const char* kCmd = "chat";

JsonValue Ids(const std::vector<int32_t>& ids) {
  JsonValue a = JsonValue::MakeArray();
  for (int32_t id : ids) a.Append(JsonValue::Int(id));
  return a;
}

}  // namespace

int ChatCommand(const std::vector<std::string>& args) {
  ArgParser a(kCmd, "MODEL [--tokenizer PATH] [options]   (or --checkpoint DIR instead of MODEL)",
              "Reads lines from standard input; each is appended to the conversation (with its newline) and\n"
              "the model continues it for up to -n tokens (stopping at the end-of-sequence token), printed as\n"
              "text as it is generated. The conversation stays in the model's KV cache: a turn runs only its new\n"
              "tokens. Ends at end of input, or when the conversation would pass --max-context tokens.");
  a.Positional("MODEL", "registry model reference, a submodel spec file, or a checkpoint directory");
  a.Option("checkpoint", "DIR", "checkpoint directory");
  AddRegistryOption(a);
  a.Option("tokenizer", "PATH", "tokenizer.json or a directory with one (default: the model's own)");
  a.Option("n", "N", "new tokens per turn at most (default 64)", "-n");
  a.Option("temp", "T", "sampling temperature; 0 = greedy (default 0.7)");
  a.Option("top-k", "K", "sample among the K most likely tokens; 0 = off (default 0)");
  a.Option("top-p", "P", "nucleus sampling mass in (0, 1]; 1 = off (default 0.95)");
  a.Option("seed", "S", "sampling seed (default 0)");
  a.Option("max-context", "N", "tokens the conversation may hold (default 2048)");
  a.Option("threads", "N", "worker threads, 0 = every usable core (default 0)");
  AddDeviceOption(a);
  a.Flag("json", "print one JSON object per turn (turn, prompt, generated, text) instead of the text");
  if (const auto exit_code = a.ParseOrExit(args)) return *exit_code;
  RunArgs r;
  if (Status st = ReadModelSource(a, &r); !st.ok()) return Fail(kCmd, st.message(), 2);
  // --tokenizer PATH, else the model's own (stored with it in the registry, or the checkpoint's files).
  std::optional<Tokenizer> tokenizer;
  if (a.Has("tokenizer")) {
    auto loaded = Tokenizer::Load(a.Get("tokenizer"));
    if (!loaded.ok()) return Fail(kCmd, loaded.status().message(), 2);
    tokenizer = std::move(loaded).value();
  } else {
    auto own = LoadModelTokenizer(a, {r.checkpoint, r.spec, r.model_ref});
    if (!own.ok()) return Fail(kCmd, own.status().message());
    if (!own->tokenizer) {
      return Fail(kCmd, "chat reads and writes text, and " + own->label + " has no tokenizer; " + NoTokenizerAdvice(),
                  2);
    }
    tokenizer = std::move(own->tokenizer);
    if (!r.model_ref.empty()) r.model_ref = own->manifest;  // the model this tokenizer belongs to
  }
  auto n = a.GetInt("n", 64);
  auto temp = a.GetDouble("temp", 0.7);
  auto top_k = a.GetInt("top-k", 0);
  auto top_p = a.GetDouble("top-p", 0.95);
  auto seed = a.GetInt("seed", 0);
  auto max_context = a.GetInt("max-context", 2048);
  auto threads = a.GetInt("threads", 0);
  for (const Status& st : {n.status(), temp.status(), top_k.status(), top_p.status(), seed.status(),
                           max_context.status(), threads.status()}) {
    if (!st.ok()) return Fail(kCmd, st.message(), 2);
  }
  if (*n < 1 || *max_context < 2 || *threads < 0 || *top_k < 0)
    return Fail(kCmd, "-n and --max-context must be positive, --threads and --top-k >= 0", 2);
  const SamplingParams sampling{static_cast<float>(*temp), static_cast<int>(*top_k), static_cast<float>(*top_p),
                                static_cast<uint64_t>(*seed)};
  if (Status st = ValidateSampling(sampling); !st.ok()) return Fail(kCmd, st.message(), 2);

  std::string manifest;
  std::unique_ptr<SplitPlan> split;
  std::vector<BrickRecord> records;
  auto model = LoadModel(a, r, &manifest, &split, &records);
  if (!model.ok()) return Fail(kCmd, model.status().message());
  ThreadPool pool(*threads == 0 ? UsableCores() : static_cast<int>(*threads));
  SessionOptions so;
  so.max_sequences = 1;
  so.max_context = *max_context;
  so.max_step_tokens = *max_context;
  auto session = CreateSession(*model, split.get(), so, &pool);
  if (!session.ok()) return Fail(kCmd, session.status().message());
  const int seq = *(*session)->AddSequence();
  const ModelConfig& cfg = (*model)->config();
  Sampler sampler(sampling, cfg.vocab_size);
  std::vector<float> logits(static_cast<size_t>(cfg.vocab_size));
  const bool tty = isatty(STDIN_FILENO) != 0 && !a.Has("json");
  const bool json = a.Has("json");

  std::vector<int32_t> pending;  // the last generated token, not yet in the cache
  std::string line;
  for (int turn = 0;; ++turn) {
    if (tty) std::fputs("> ", stdout), std::fflush(stdout);
    if (!std::getline(std::cin, line)) break;
    std::vector<int32_t> prompt = tokenizer->Encode(line + "\n");
    std::vector<int32_t> feed = pending;
    feed.insert(feed.end(), prompt.begin(), prompt.end());
    const int64_t used = (*session)->Length(seq);
    if (used + static_cast<int64_t>(feed.size()) + *n > *max_context) {
      return Fail(kCmd, "the conversation would pass --max-context " + std::to_string(*max_context) + " tokens (" +
                            std::to_string(used) + " used); start a new chat or raise --max-context");
    }
    std::vector<int32_t> generated;
    StreamDecoder text(*tokenizer);
    std::string all_text;
    for (int64_t i = 0; i < *n; ++i) {
      const SequenceChunk chunk{seq, feed};
      if (Status st = (*session)->Forward({&chunk, 1}, false, logits.data()); !st.ok()) return Fail(kCmd, st.message());
      const int32_t token = sampler.Sample(logits.data());
      generated.push_back(token);
      feed.assign(1, token);
      auto piece = text.Next(token);
      const std::string s = piece.ok() ? *piece : "\xef\xbf\xbd";
      all_text += s;
      if (!json) std::fputs(s.c_str(), stdout), std::fflush(stdout);
      if (token == cfg.eos_token_id) break;
    }
    pending = feed;  // the last token goes into the cache with the next turn
    const std::string rest = text.Finish();
    all_text += rest;
    if (json) {
      JsonValue o = JsonValue::MakeObject();
      o.Set("turn", JsonValue::Int(turn));
      if (!manifest.empty()) o.Set("manifest", JsonValue::String(manifest));
      o.Set("prompt", Ids(prompt));
      o.Set("generated", Ids(generated));
      o.Set("text", JsonValue::String(all_text));
      std::printf("%s\n", DumpJson(o).c_str());
    } else {
      std::printf("%s\n", rest.c_str());
    }
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace brickrt::cli
