// brick verify: recompute the SHA-256 of stored payloads and list every damaged brick with its fix.
#include <unistd.h>

#include <cstdio>
#include <map>

#include "cli/commands.h"
#include "cli/registry_access.h"
#include "core/json.h"

namespace brickrt::cli {
namespace {

// The bricks REF names: none -> every version of every brick; a model ref -> its manifest's bricks;
// otherwise a brick ref (NAME = latest version, NAME@VERSION, or a model-relative name).
Result<std::vector<BrickRecord>> Targets(const Registry& reg, const std::optional<std::string>& ref) {
  if (!ref) {
    BrickFilter all;
    all.all_versions = true;
    return reg.ListBricks(all);
  }
  if (ref->find('/') == std::string::npos) {
    auto m = reg.ResolveModel(*ref);
    if (m.ok()) return reg.ManifestBricks(*m);
    if (m.status().code() != StatusCode::kNotFound) return m.status();
    auto b = reg.GetBrick(*ref);
    if (!b.ok() && b.status().code() == StatusCode::kNotFound)
      return NotFound("'" + *ref + "' is neither a model nor a brick in registry " + reg.path());
    if (!b.ok()) return b.status();
    return std::vector<BrickRecord>{*b};
  }
  BRICK_ASSIGN_OR_RETURN(BrickRecord b, reg.GetBrick(*ref));
  return std::vector<BrickRecord>{std::move(b)};
}

// The load error says "...; run `brick verify`, then re-import the model": here verify is running,
// so keep the diagnosis and give the concrete re-import instead.
std::string Diagnosis(const std::string& message) {
  const size_t hint = message.find("; run `brick verify`");
  return hint == std::string::npos ? message : message.substr(0, hint);
}

// "brick import SOURCE --name MODEL" from the model's latest manifest, which knows where it came from.
std::string Fix(const Registry& reg, const BrickRecord& b, std::map<std::string, std::string>* cache) {
  const std::string model = b.name.substr(0, b.name.find('/'));
  auto it = cache->find(model);
  if (it == cache->end()) {
    auto m = reg.ResolveModel(model);
    const std::string dir = m.ok() && !m->source.empty() ? m->source : "CHECKPOINT_DIR";
    it = cache->emplace(model, "re-import the model: brick import " + dir + " --name " + model).first;
  }
  return it->second;
}

// The manifests whose tokenizer files REF covers: every model's (no REF), one model's, or none (a brick).
Result<std::vector<ManifestRecord>> TokenizerTargets(const Registry& reg, const std::optional<std::string>& ref) {
  std::vector<ManifestRecord> out;
  if (!ref) {
    BRICK_ASSIGN_OR_RETURN(std::vector<ManifestRecord> all, reg.ListModels());
    for (ManifestRecord& m : all)
      if (!m.tokenizer.empty()) out.push_back(std::move(m));
    return out;
  }
  if (ref->find('/') != std::string::npos) return out;
  auto m = reg.ResolveModel(*ref);
  if (m.ok() && !m->tokenizer.empty()) out.push_back(std::move(m).value());
  return out;
}

}  // namespace

int VerifyCommand(const std::vector<std::string>& args) {
  const char* cmd = "verify";
  ArgParser a(cmd, "[REF] [options]",
              "Recomputes the SHA-256 of stored payloads and checks them against the recorded digests: every\n"
              "version of every brick, the bricks of one model (NAME, NAME@VERSION, NAME:TAG) or one brick\n"
              "(NAME[@VERSION]), and the tokenizer files stored with the models. Prints one line per damaged\n"
              "brick or tokenizer with the fix; exits 1 if any is damaged.");
  a.Positional("REF", "model or brick reference (default: everything)");
  AddRegistryOption(a);
  a.Flag("json", "print a JSON array of {name, version, ok, error} for every brick checked (tokenizers: tokenizer: true)");
  if (const auto exit_code = a.ParseOrExit(args)) return *exit_code;
  auto reg = OpenRegistry(a, /*writes=*/false);
  if (!reg.ok()) return Fail(cmd, reg.status().message());
  auto targets = Targets(**reg, a.GetPositional(0));
  if (!targets.ok()) return Fail(cmd, targets.status().message());

  const bool progress = isatty(STDERR_FILENO) != 0 && !a.Has("json");
  JsonValue arr = JsonValue::MakeArray();
  std::map<std::string, std::string> fixes;
  int bad = 0;
  int64_t bytes = 0;
  for (size_t i = 0; i < targets->size(); ++i) {
    const BrickRecord& b = (*targets)[i];
    if (progress) std::fprintf(stderr, "\rverifying %zu/%zu", i + 1, targets->size());
    const Status st = (*reg)->VerifyBrick(b);
    bytes += b.bytes;
    if (a.Has("json")) {
      JsonValue o = JsonValue::MakeObject();
      o.Set("name", JsonValue::String(b.name));
      o.Set("version", JsonValue::Int(b.version));
      o.Set("ok", JsonValue::Bool(st.ok()));
      o.Set("error", st.ok() ? JsonValue() : JsonValue::String(Diagnosis(st.message())));
      arr.Append(std::move(o));
    }
    if (st.ok()) continue;
    ++bad;
    if (progress) std::fprintf(stderr, "\r\033[K");
    if (!a.Has("json")) {
      std::printf("BAD %s: %s; fix: %s\n", b.Ref().c_str(), Diagnosis(st.message()).c_str(),
                  Fix(**reg, b, &fixes).c_str());
    }
  }
  if (progress) std::fprintf(stderr, "\r\033[K");
  // Tokenizer files are blobs too (schema v5): loading them checks each file's digest.
  auto tokenizers = TokenizerTargets(**reg, a.GetPositional(0));
  if (!tokenizers.ok()) return Fail(cmd, tokenizers.status().message());
  int bad_tokenizers = 0;
  for (const ManifestRecord& m : *tokenizers) {
    const Status st = (*reg)->LoadTokenizerFiles(m).status();
    if (a.Has("json")) {
      JsonValue o = JsonValue::MakeObject();
      o.Set("name", JsonValue::String(m.name));
      o.Set("version", JsonValue::Int(m.version));
      o.Set("tokenizer", JsonValue::Bool(true));
      o.Set("ok", JsonValue::Bool(st.ok()));
      o.Set("error", st.ok() ? JsonValue() : JsonValue::String(Diagnosis(st.message())));
      arr.Append(std::move(o));
    }
    if (st.ok()) continue;
    ++bad_tokenizers;
    if (!a.Has("json")) {
      std::printf("BAD tokenizer of %s: %s; fix: re-import the model: brick import %s --name %s\n", m.Ref().c_str(),
                  Diagnosis(st.message()).c_str(), m.source.empty() ? "CHECKPOINT_DIR" : m.source.c_str(),
                  m.name.c_str());
    }
  }
  if (a.Has("json")) std::printf("%s\n", DumpJson(arr).c_str());
  if (bad > 0 || bad_tokenizers > 0) {
    return Fail(cmd, std::to_string(bad) + " of " + std::to_string(targets->size()) + " bricks and " +
                         std::to_string(bad_tokenizers) + " of " + std::to_string(tokenizers->size()) +
                         " tokenizers are damaged; re-import their models (fix lines above), then run brick verify again");
  }
  if (!a.Has("json"))
    std::printf("verified %zu bricks (%.1f MiB) and %zu tokenizers: all digests match\n", targets->size(),
                static_cast<double>(bytes) / (1 << 20), tokenizers->size());
  return 0;
}

}  // namespace brickrt::cli
