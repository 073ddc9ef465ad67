// brick import: an HF checkpoint directory -> versioned bricks + a model manifest in the registry.
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "cli/commands.h"
#include "cli/registry_access.h"
#include "core/json.h"
#include "registry/hf_checkpoint.h"
#include "registry/tokenizer_files.h"

namespace brickrt::cli {
namespace {

// The tokenizer to store with the model: --tokenizer PATH, else the checkpoint's own files (none: the
// model imports without one). Checked by building it, and against the model's vocabulary.
Result<TokenizerFiles> ReadModelTokenizer(const ArgParser& a, const std::string& dir, const ModelConfig& cfg) {
  const std::string path = a.Has("tokenizer") ? a.Get("tokenizer") : dir;
  BRICK_ASSIGN_OR_RETURN(std::optional<TokenizerFiles> files, ReadTokenizerFiles(path));
  if (!files && a.Has("tokenizer"))
    return NotFound("--tokenizer " + path + " holds neither tokenizer.json nor vocab.json + merges.txt");
  if (!files) return TokenizerFiles{};
  std::error_code ec;
  // A single file (any name) is a tokenizer.json, named by its own path in errors.
  auto tok = std::filesystem::is_directory(path, ec) ? BuildTokenizer(*files, path)
                                                     : Tokenizer::FromTokenizerJson(files->front().bytes, path);
  if (!tok.ok()) return tok.status();
  if (tok->vocab_size() > cfg.vocab_size) {
    return InvalidArgument("tokenizer " + path + " has " + std::to_string(tok->vocab_size()) +
                           " tokens, more than the model's vocab_size " + std::to_string(cfg.vocab_size) +
                           "; it is not this model's tokenizer");
  }
  return std::move(files).value();
}

}  // namespace

int ImportCommand(const std::vector<std::string>& args) {
  const char* cmd = "import";
  ArgParser a(cmd, "DIR --name NAME [options]",
              "Splits an HF-layout ModuleFormer checkpoint into bricks (embedding, norms, routers, every expert,\n"
              "lm head) and stores them, content-addressed and versioned, with a manifest NAME@VERSION.\n"
              "Re-importing identical weights adds nothing; changed bricks get new versions.");
  a.Positional("DIR", "checkpoint directory (config.json + model.safetensors or a sharded index)");
  a.Option("name", "NAME", "model name; bricks are named NAME/L3.mlp.E17 etc.");
  a.Option("visibility", "shared|private", "visibility of the imported bricks (default shared)");
  a.Option("tokenizer", "PATH",
           "tokenizer to store with the model: tokenizer.json or a directory with it or vocab.json + merges.txt\n"
           "(default: the checkpoint's own tokenizer files, if any)");
  AddRegistryOption(a);
  a.Flag("json", "print the result as one JSON object");
  if (const auto exit_code = a.ParseOrExit(args)) return *exit_code;
  const auto dir = a.GetPositional(0);
  if (!dir) return Fail(cmd, "missing checkpoint directory (usage: brick import DIR --name NAME)", 2);
  const std::string name = a.Get("name");
  if (name.empty()) return Fail(cmd, "--name NAME is required", 2);
  if (name.find_first_of("/@:*? \t") != std::string::npos)
    return Fail(cmd, "--name '" + name + "': a model name may not contain '/', '@', ':', '*', '?' or spaces", 2);
  const auto vis = ParseVisibility(a.Get("visibility", "shared"));
  if (!vis) return Fail(cmd, "--visibility must be shared or private", 2);

  // Another import holds the write lock for as long as it writes its payloads (minutes for a large
  // model): wait for it rather than fail.
  auto reg = OpenRegistry(a, /*writes=*/true, /*busy_timeout_ms=*/30 * 60 * 1000);
  if (!reg.ok()) return Fail(cmd, reg.status().message());
  if (isatty(STDERR_FILENO)) std::fprintf(stderr, "reading %s ...\n", dir->c_str());
  auto ckpt = LoadHfCheckpoint(*dir);
  if (!ckpt.ok()) return Fail(cmd, ckpt.status().message());
  auto tokenizer = ReadModelTokenizer(a, *dir, ckpt->config);
  if (!tokenizer.ok()) return Fail(cmd, tokenizer.status().message());
  auto res = (*reg)->Import(name, ckpt->config, ckpt->bricks, *vis, *dir, *tokenizer);
  if (!res.ok()) return Fail(cmd, res.status().message());

  if (a.Has("json")) {
    JsonValue o = JsonValue::MakeObject();
    o.Set("manifest", JsonValue::String(res->manifest.Ref()));
    o.Set("new_manifest", JsonValue::Bool(res->new_manifest));
    o.Set("new_bricks", JsonValue::Int(res->new_bricks));
    o.Set("reused_bricks", JsonValue::Int(res->reused_bricks));
    o.Set("new_blob_bytes", JsonValue::Int(res->new_blob_bytes));
    o.Set("tokenizer", JsonValue::Bool(!res->manifest.tokenizer.empty()));
    o.Set("registry", JsonValue::String((*reg)->path()));
    std::printf("%s\n", DumpJson(o).c_str());
  } else {
    std::printf("%s: %s (%d new bricks, %d unchanged, %.1f MiB of new payload%s) in %s\n",
                res->new_manifest ? "imported" : "unchanged", res->manifest.Ref().c_str(), res->new_bricks,
                res->reused_bricks, static_cast<double>(res->new_blob_bytes) / (1 << 20),
                res->manifest.tokenizer.empty() ? "" : ", with tokenizer", (*reg)->path().c_str());
  }
  return 0;
}

}  // namespace brickrt::cli
