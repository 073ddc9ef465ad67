// brick run: load a checkpoint, prefill one or more prompts together, generate, report speed.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "bricks/generator.h"
#include "bricks/model.h"
#include "bricks/session.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/registry_access.h"
#include "cli/trace_writer.h"
#include "core/json.h"
#include "core/npy.h"
#include "core/submodel_spec.h"
#include "core/system.h"
#include "node/serve_client.h"
#include "node/split.h"
#include "node/submodel.h"
#include "registry/hf_checkpoint.h"

namespace brickrt::cli {
namespace {

constexpr const char* kCmd = "run";

struct RunArgs {
  std::string checkpoint;  // a checkpoint directory, or empty
  std::string spec;        // a submodel spec file (YAML), or empty
  std::string model_ref;   // a registry model reference, or empty
  std::vector<std::vector<int32_t>> prompts;
  GenerateOptions gen;
  int threads = 0;
  std::string dump_logits;
  std::string trace;
  std::string server;  // a coordinator's endpoint: generate there instead of loading a model
  int64_t timeout_ms = 60000;
  bool json = false;
};

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
  if (const auto source = a.GetPositional(0)) {
    if (!r.checkpoint.empty()) return InvalidArgument("give either MODEL or --checkpoint DIR, not both");
    // A directory is a checkpoint, a file a submodel spec; anything else is a registry reference
    // (NAME, NAME@V, NAME:TAG — none of which may contain '/', so a mistyped path is not taken for one).
    std::error_code ec;
    const std::string ext = std::filesystem::path(*source).extension().string();
    if (std::filesystem::is_directory(*source, ec)) {
      r.checkpoint = *source;
    } else if (std::filesystem::is_regular_file(*source, ec) || ext == ".yaml" || ext == ".yml" ||
               source->find('/') != std::string::npos) {
      r.spec = *source;  // a missing file is reported by the spec reader, naming the path
    } else {
      r.model_ref = *source;
    }
  }
  if (r.checkpoint.empty() && r.model_ref.empty() && r.spec.empty() && r.server.empty()) {
    return InvalidArgument(
        "say what to run: a registry model (brick run NAME[:TAG|@VERSION]), a submodel spec (brick run SPEC.yaml), "
        "--checkpoint DIR or --server ENDPOINT");
  }
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

void PrintResult(const RunArgs& r, const GenerateResult& g, double load_seconds, const std::string& manifest) {
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
    o.Set("prefill_tokens_per_s", JsonValue::Number(prefill_tps));
    o.Set("decode_tokens_per_s", JsonValue::Number(decode_tps));
    o.Set("load_seconds", JsonValue::Number(load_seconds));
    o.Set("peak_rss_bytes", JsonValue::Int(PeakResidentBytes()));
    o.Set("rss_anon_bytes", JsonValue::Int(ResidentAnonBytes()));
    std::printf("%s\n", DumpJson(o).c_str());
    return;
  }
  for (size_t i = 0; i < g.generated.size(); ++i) {
    if (g.generated.size() > 1) std::printf("[%zu] ", i);
    for (size_t j = 0; j < g.generated[i].size(); ++j) std::printf("%s%d", j ? " " : "", g.generated[i][j]);
    std::printf("\n");
  }
  std::fprintf(
      stderr, "load %.2f s | prefill %lld tokens, %.1f tok/s | decode %lld tokens, %.1f tok/s | %.0f MiB resident\n",
      load_seconds, static_cast<long long>(g.prefill_tokens), prefill_tps, static_cast<long long>(g.decode_tokens),
      decode_tps, static_cast<double>(ResidentAnonBytes()) / (1 << 20));
}

// Loads the model from a checkpoint directory or from the registry; *manifest gets NAME@VERSION for
// a registry model. A spec with a `placement:` section also connects to its nodes (*split).
// *records gets the brick records of a registry model (for the trace's digests).
Result<std::shared_ptr<const Model>> LoadModel(const ArgParser& a, const RunArgs& r, std::string* manifest,
                                               std::unique_ptr<SplitPlan>* split, std::vector<BrickRecord>* records) {
  const bool tty = isatty(STDERR_FILENO) != 0;  // progress lines only for a person watching
  if (!r.checkpoint.empty()) {
    if (tty) std::fprintf(stderr, "loading %s ...\n", r.checkpoint.c_str());
    BRICK_ASSIGN_OR_RETURN(LoadedCheckpoint ckpt, LoadHfCheckpoint(r.checkpoint));
    if (tty) std::fprintf(stderr, "%s\n", ckpt.description.c_str());
    auto model = Model::Build(ckpt.config, std::move(ckpt.bricks));
    if (!model.ok()) return model.status().WithContext(r.checkpoint);
    return model;
  }
  BRICK_ASSIGN_OR_RETURN(auto reg, OpenRegistry(a, /*writes=*/false));
  if (!r.spec.empty()) {
    BRICK_ASSIGN_OR_RETURN(SubmodelSpec spec, ReadSubmodelSpec(r.spec));
    BRICK_ASSIGN_OR_RETURN(Composition c, Compose(*reg, spec));
    if (tty)
      std::fprintf(stderr, "loading %s (from %s) from %s ...\n", r.spec.c_str(), c.base.Ref().c_str(),
                   reg->path().c_str());
    BRICK_ASSIGN_OR_RETURN(LoadedModel loaded, LoadComposition(*reg, c));
    *manifest = c.name.empty() ? r.spec : c.name;
    *records = c.bricks;
    BRICK_ASSIGN_OR_RETURN(*split, PlanSplit(c, loaded.model));
    if (tty && !(*split)->nodes.empty()) {
      std::string nodes;
      for (const std::string& n : (*split)->nodes) nodes += (nodes.empty() ? "" : ", ") + n;
      std::fprintf(stderr, "MLP experts placed on node(s): %s\n", nodes.c_str());
    }
    return loaded.model;
  }
  BRICK_ASSIGN_OR_RETURN(ManifestRecord m, reg->ResolveModel(r.model_ref));
  if (tty) std::fprintf(stderr, "loading %s from %s ...\n", m.Ref().c_str(), reg->path().c_str());
  BRICK_ASSIGN_OR_RETURN(LoadedModel loaded, LoadManifestModel(*reg, m));
  *manifest = m.Ref();
  BRICK_ASSIGN_OR_RETURN(*records, reg->ManifestBricks(m));
  return loaded.model;
}

// --server: each prompt is one generate request to the coordinator, all sent at once (so they share
// its batched steps); the replies say which manifest generated them.
int RunOnServer(const RunArgs& r) {
  std::vector<Result<serve::GenerateReply>> replies(r.prompts.size(), Internal("not sent"));
  std::vector<std::thread> clients;
  for (size_t i = 0; i < r.prompts.size(); ++i) {
    clients.emplace_back([&, i] {
      auto client = ServeClient::Connect(r.server, std::chrono::milliseconds(r.timeout_ms));
      if (!client.ok()) {
        replies[i] = client.status();
        return;
      }
      serve::GenerateRequest req;
      req.prompt = r.prompts[i];
      req.max_new_tokens = static_cast<uint32_t>(r.gen.max_new_tokens);
      req.temperature = r.gen.sampling.temperature;
      req.top_k = static_cast<uint32_t>(r.gen.sampling.top_k);
      req.top_p = r.gen.sampling.top_p;
      req.seed = r.gen.sampling.seed + i;  // as a local batch: prompt i samples with seed + i
      req.stop_at_eos = r.gen.stop_at_eos;
      replies[i] = (*client)->Generate(std::move(req));
    });
  }
  for (auto& t : clients) t.join();
  GenerateResult g;
  std::string manifests;
  for (size_t i = 0; i < replies.size(); ++i) {
    if (!replies[i].ok()) return Fail(kCmd, replies[i].status().message());
    const serve::GenerateReply& reply = *replies[i];
    if (manifests.find(reply.manifest) == std::string::npos) manifests += (manifests.empty() ? "" : ",") + reply.manifest;
    g.generated.push_back(reply.generated);
    g.prefill_tokens += static_cast<int64_t>(r.prompts[i].size());
    g.decode_tokens += std::max<int64_t>(0, static_cast<int64_t>(reply.generated.size()) - 1);
    g.prefill_seconds = std::max(g.prefill_seconds, reply.prefill_seconds);
    g.decode_seconds = std::max(g.decode_seconds, reply.decode_seconds);
  }
  PrintResult(r, g, 0, manifests);
  return 0;
}

}  // namespace

int RunCommand(const std::vector<std::string>& args) {
  ArgParser a(kCmd, "MODEL --tokens IDS [options]   (or --checkpoint DIR instead of MODEL)",
              "Generates tokens from a model in the registry (NAME, NAME@VERSION or NAME:TAG), from a submodel\n"
              "spec (SPEC.yaml: composed from the registry, loading only the bricks it keeps) or from a\n"
              "ModuleFormer checkpoint directory (HF layout: config.json + model.safetensors or a sharded\n"
              "model.safetensors.index.json), or on a coordinator (--server ENDPOINT). Several --tokens prompts\n"
              "run as one batch. Generated ids go to stdout, speed to stderr (or everything as one JSON object\n"
              "with --json, which names the manifest that generated them).");
  a.Positional("MODEL", "registry model reference, a submodel spec file, or a checkpoint directory");
  a.Option("checkpoint", "DIR", "checkpoint directory");
  AddRegistryOption(a);
  a.Option("tokens", "IDS", "prompt token ids, comma-separated; repeat for a batch", "", /*repeatable=*/true);
  a.Option("n", "N", "new tokens per prompt (default 16; 0: prefill only)", "-n");
  a.Option("temp", "T", "sampling temperature; 0 = greedy (default 1.0)");
  a.Option("top-k", "K", "sample among the K most likely tokens; 0 = off (default 0)");
  a.Option("top-p", "P", "nucleus sampling mass in (0, 1]; 1 = off (default 1)");
  a.Option("seed", "S", "sampling seed; prompt i uses S+i (default 0)");
  a.Option("threads", "N", "worker threads, 0 = every core this process may use (default 0)");
  a.Option("dump-logits", "FILE.npy", "write the logits of every prompt position as float32 [T, vocab]");
  a.Option("trace", "FILE.jsonl", "one line per token per layer: experts, gates, where each ran, digests, block time");
  a.Flag("ignore-eos", "keep generating after the end-of-sequence token");
  a.Flag("json", "print one JSON object: manifest, prompt_tokens, prompt, generated, *_tokens_per_s");
  a.Option("server", "ENDPOINT", "generate on a coordinator (brick serve, role: coordinator) instead of loading a model");
  a.Option("timeout-ms", "MS", "with --server: how long to wait for each reply (default 60000)");
  if (const auto exit_code = a.ParseOrExit(args)) return *exit_code;
  auto parsed = ReadArgs(a);
  if (!parsed.ok()) return Fail(kCmd, parsed.status().message(), 2);
  const RunArgs& r = *parsed;
  if (!r.server.empty()) return RunOnServer(r);

  const auto t0 = std::chrono::steady_clock::now();
  std::string manifest;
  std::unique_ptr<SplitPlan> split;  // outlives the session that points at its placement
  std::vector<BrickRecord> records;
  auto model = LoadModel(a, r, &manifest, &split, &records);
  if (!model.ok()) return Fail(kCmd, model.status().message());
  const double load_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  const int cores = UsableCores();
  if (r.threads > cores)
    std::fprintf(stderr, "brick run: warning: --threads %d is more than the %d usable cores; decode will be slower\n",
                 r.threads, cores);
  ThreadPool pool(r.threads == 0 ? cores : r.threads);
  SessionOptions so;
  so.max_sequences = static_cast<int>(r.prompts.size());
  int64_t longest = 0, total = 0;
  for (const auto& p : r.prompts) {
    longest = std::max<int64_t>(longest, static_cast<int64_t>(p.size()));
    total += static_cast<int64_t>(p.size());
  }
  so.max_context = longest + r.gen.max_new_tokens;
  so.max_step_tokens = std::max<int64_t>(total, static_cast<int64_t>(r.prompts.size()));
  if (split && !split->executors.empty()) so.mlp_placement = &split->placement;
  std::unique_ptr<JsonlTrace> trace;
  if (!r.trace.empty()) {
    std::map<std::tuple<bool, int64_t, int64_t>, std::string> digests;
    for (const BrickRecord& b : records) {
      if (b.kind == BrickKind::kAttnExpert || b.kind == BrickKind::kMlpExpert)
        digests[{b.kind == BrickKind::kAttnExpert, b.layer, b.index}] = b.digest;
    }
    auto opened = JsonlTrace::Open(r.trace, std::move(digests), split ? split->nodes : std::vector<std::string>{});
    if (!opened.ok()) return Fail(kCmd, opened.status().message());
    trace = std::move(opened).value();
    so.trace = trace.get();
  }
  auto created = Session::Create(*model, so, &pool);
  if (!created.ok()) return Fail(kCmd, created.status().message());
  Session& session = **created;

  if (!r.dump_logits.empty()) {
    if (Status st = DumpLogits(session, r.prompts[0], r.dump_logits); !st.ok()) return Fail(kCmd, st.message());
  }
  auto result = Generate(session, r.prompts, r.gen);
  if (!result.ok()) return Fail(kCmd, result.status().message());
  if (trace) {
    if (Status st = trace->Close(); !st.ok()) return Fail(kCmd, st.message());
  }
  PrintResult(r, *result, load_seconds, manifest);
  return 0;
}

int Fail(const std::string& command, const std::string& message, int code) {
  std::fprintf(stderr, "brick %s: error: %s\n", command.c_str(), message.c_str());
  return code;
}

}  // namespace brickrt::cli
