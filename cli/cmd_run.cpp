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
#include "cli/device_option.h"
#include "cli/registry_access.h"
#include "cli/model_source.h"
#include "cli/run_args.h"
#include "cli/trace_writer.h"
#include "core/json.h"
#include "core/npy.h"
#include "core/submodel_spec.h"
#include "core/system.h"
#include "node/serve_client.h"
#include "node/session_factory.h"
#include "node/split.h"
#include "node/submodel.h"
#include "registry/hf_checkpoint.h"

namespace brickrt::cli {
namespace {

constexpr const char* kCmd = "run";

// Logits of every prompt position, as float32 [T, vocab].
Status DumpLogits(ModelSession& session, const std::vector<int32_t>& prompt, const std::string& path) {
  BRICK_ASSIGN_OR_RETURN(int seq, session.AddSequence());
  const int64_t V = session.model().config().vocab_size, T = static_cast<int64_t>(prompt.size());
  std::vector<float> logits(static_cast<size_t>(T * V));
  const SequenceChunk chunk{seq, prompt};
  Status st = session.Forward({&chunk, 1}, /*all_positions=*/true, logits.data());
  session.RemoveSequence(seq);
  BRICK_RETURN_IF_ERROR(st);
  return WriteNpyF32(path, logits.data(), {T, V});
}

}  // namespace

Result<std::shared_ptr<const Model>> LoadModel(const ArgParser& a, const RunArgs& r, std::string* manifest,
                                               std::unique_ptr<SplitPlan>* split, std::vector<BrickRecord>* records) {
  const bool tty = isatty(STDERR_FILENO) != 0;  // progress lines only for a person watching
  if (!r.checkpoint.empty()) {
    if (tty) std::fprintf(stderr, "loading %s ...\n", r.checkpoint.c_str());
    BRICK_ASSIGN_OR_RETURN(LoadedCheckpoint ckpt, LoadHfCheckpoint(r.checkpoint));
    if (tty) std::fprintf(stderr, "%s\n", ckpt.description.c_str());
    auto model = Model::Build(ckpt.config, std::move(ckpt.bricks));
    if (!model.ok()) return model.status().WithContext(r.checkpoint);
    *split = WholeModelOn(r.device);
    return model;
  }
  BRICK_ASSIGN_OR_RETURN(auto reg, OpenRegistry(a, /*writes=*/false));
  if (!r.spec.empty()) {
    BRICK_ASSIGN_OR_RETURN(SubmodelSpec spec, ReadSubmodelSpec(r.spec));
    if (r.device) SetPlacementDevice(&spec, *r.device);
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
      std::fprintf(stderr, "MLP experts placed on: %s\n", nodes.c_str());
    }
    return loaded.model;
  }
  BRICK_ASSIGN_OR_RETURN(ManifestRecord m, reg->ResolveModel(r.model_ref));
  if (tty) std::fprintf(stderr, "loading %s from %s ...\n", m.Ref().c_str(), reg->path().c_str());
  BRICK_ASSIGN_OR_RETURN(LoadedModel loaded, LoadManifestModel(*reg, m));
  *manifest = m.Ref();
  BRICK_ASSIGN_OR_RETURN(*records, reg->ManifestBricks(m));
  *split = WholeModelOn(r.device);
  return loaded.model;
}

namespace {

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
  ArgParser a(kCmd, "MODEL (--tokens IDS | --prompt TEXT) [options]   (or --checkpoint DIR instead of MODEL)",
              "Generates tokens from a model in the registry (NAME, NAME@VERSION or NAME:TAG), from a submodel\n"
              "spec (SPEC.yaml: composed from the registry, loading only the bricks it keeps) or from a\n"
              "ModuleFormer checkpoint directory (HF layout: config.json + model.safetensors or a sharded\n"
              "model.safetensors.index.json), or on a coordinator (--server ENDPOINT). Several prompts run as\n"
              "one batch. Generated ids go to stdout (text, streamed as it is generated, for --prompt), speed\n"
              "to stderr (or everything as one JSON object with --json, which names the manifest).");
  AddRunOptions(a);
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
  std::unique_ptr<JsonlTrace> trace;
  if (!r.trace.empty()) {
    std::map<std::tuple<bool, int64_t, int64_t>, std::string> digests;
    for (const BrickRecord& b : records) {
      if (b.kind == BrickKind::kAttnExpert || b.kind == BrickKind::kMlpExpert)
        digests[{b.kind == BrickKind::kAttnExpert, b.layer, b.index}] = b.digest;
    }
    auto opened = JsonlTrace::Open(r.trace, std::move(digests), split ? split->nodes : std::vector<std::string>{},
                                   r.tokenizer ? &*r.tokenizer : nullptr);
    if (!opened.ok()) return Fail(kCmd, opened.status().message());
    trace = std::move(opened).value();
    so.trace = trace.get();
  }
  auto created = CreateSession(*model, split.get(), so, &pool);
  if (!created.ok()) return Fail(kCmd, created.status().message());
  ModelSession& session = **created;

  if (!r.dump_logits.empty()) {
    if (Status st = DumpLogits(session, r.prompts[0], r.dump_logits); !st.ok()) return Fail(kCmd, st.message());
  }
  // One text prompt without --json: stream the text as it is generated.
  std::optional<TextStream> stream;
  GenerateOptions gen = r.gen;
  if (r.tokenizer && r.prompt_texts.size() == 1 && !r.json) {
    stream.emplace(*r.tokenizer);
    gen.on_token = [&stream](size_t, int32_t id) { stream->Token(id); };
  }
  auto result = Generate(session, r.prompts, gen);
  if (stream) stream->Finish();
  if (!result.ok()) return Fail(kCmd, result.status().message());
  if (trace) {
    if (Status st = trace->Close(); !st.ok()) return Fail(kCmd, st.message());
  }
  PrintResult(r, *result, load_seconds, manifest, stream.has_value());
  return 0;
}

int Fail(const std::string& command, const std::string& message, int code) {
  std::fprintf(stderr, "brick %s: error: %s\n", command.c_str(), message.c_str());
  return code;
}

}  // namespace brickrt::cli
