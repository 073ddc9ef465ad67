// Shared by cmd_eval, cmd_profile and cmd_prune.
#include "cli/eval_common.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "core/file.h"
#include "core/sha256.h"
#include "core/submodel_spec.h"
#include "node/submodel.h"
#include "registry/compose.h"

namespace brickrt::cli {

Result<MeasuredModel> LoadMeasuredModel(const Registry& reg, const std::string& ref) {
  MeasuredModel out;
  const std::string ext = std::filesystem::path(ref).extension().string();
  std::error_code ec;
  if (ext == ".yaml" || ext == ".yml" || ref.find('/') != std::string::npos ||
      std::filesystem::is_regular_file(ref, ec)) {
    BRICK_ASSIGN_OR_RETURN(SubmodelSpec spec, ReadSubmodelSpec(ref));
    BRICK_ASSIGN_OR_RETURN(Composition c, Compose(reg, spec));
    BRICK_ASSIGN_OR_RETURN(LoadedModel loaded, LoadComposition(reg, c));
    BRICK_ASSIGN_OR_RETURN(out.tokenizer, reg.LoadTokenizer(c.base));
    out.model = loaded.model;
    out.label = ref;
    return out;
  }
  BRICK_ASSIGN_OR_RETURN(ManifestRecord m, reg.ResolveModel(ref));
  BRICK_ASSIGN_OR_RETURN(LoadedModel loaded, LoadManifestModel(reg, m));
  BRICK_ASSIGN_OR_RETURN(out.tokenizer, reg.LoadTokenizer(m));
  out.model = loaded.model;
  out.label = m.Ref();
  out.manifest = std::move(m);
  return out;
}

namespace {

// The whole file as one document of text. where[i] is the 1-based line:col (in bytes) at which
// token i's bytes start, for CheckVocabulary's messages.
Result<TokenData> EncodeTextFile(const std::string& path, const Tokenizer& tokenizer) {
  BRICK_ASSIGN_OR_RETURN(std::string text, ReadFileCapped(path, size_t{1} << 32));
  TokenData out;
  out.path = path;
  out.digest = Sha256Hex(text.data(), text.size());
  out.ids = tokenizer.Encode(text);
  out.where.reserve(out.ids.size());
  int32_t line = 1, col = 1;
  for (int32_t id : out.ids) {
    out.where.emplace_back(line, col);
    for (char ch : tokenizer.TokenBytes(id)) {
      if (ch == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
  }
  return out;
}

}  // namespace

Result<TokenData> ReadData(const std::string& path, const ModelConfig& cfg, const Tokenizer* tokenizer) {
  const std::string ext = std::filesystem::path(path).extension().string();
  const bool ids = ext == ".ids" || ext == ".tokens" || ext == ".npy";
  if (!ids && tokenizer == nullptr) {
    return Unsupported(path + ": reading text needs a tokenizer, and the model has none; import the model with its "
                              "tokenizer (brick import DIR --name NAME [--tokenizer PATH]), or give token ids as .ids "
                              "or .tokens (whitespace- or comma-separated) or a 1-D int32/int64 .npy");
  }
  TokenData data;
  if (ids) {
    BRICK_ASSIGN_OR_RETURN(data, ReadTokenFile(path));
  } else {
    BRICK_ASSIGN_OR_RETURN(data, EncodeTextFile(path, *tokenizer));
  }
  BRICK_RETURN_IF_ERROR(CheckVocabulary(data, cfg.vocab_size));
  if (data.ids.size() < 2) {
    return InvalidArgument(path + ": holds " + std::to_string(data.ids.size()) +
                           " token id; measuring a model needs at least 2");
  }
  return data;
}

void AddWindowOptions(ArgParser& a) {
  a.Option("context", "N", "tokens per window (default 1024)");
  a.Option("stride", "S", "how far each window advances; tokens are scored once (default: context / 2)");
}

Result<EvalOptions> WindowOptions(const ArgParser& a) {
  EvalOptions o;
  BRICK_ASSIGN_OR_RETURN(o.context, a.GetInt("context", 1024));
  if (o.context < 2 || o.context > (int64_t{1} << 20)) return InvalidArgument("--context must be in [2, 1048576]");
  BRICK_ASSIGN_OR_RETURN(o.stride, a.GetInt("stride", std::max<int64_t>(1, o.context / 2)));
  if (o.stride < 1 || o.stride > o.context) {
    return InvalidArgument("--stride must be in [1, " + std::to_string(o.context) + "] (at most --context)");
  }
  return o;
}

std::function<void(int64_t, int64_t)> ProgressBar(const std::string& label) {
  if (isatty(STDERR_FILENO) == 0) return {};
  return [label](int64_t done, int64_t total) {
    constexpr int kWidth = 30;
    const int filled = total > 0 ? static_cast<int>(kWidth * done / total) : kWidth;
    std::fprintf(stderr, "\r%s [%s%s] %lld/%lld tokens", label.c_str(), std::string(static_cast<size_t>(filled), '=').c_str(),
                 std::string(static_cast<size_t>(kWidth - filled), ' ').c_str(), static_cast<long long>(done),
                 static_cast<long long>(total));
    std::fflush(stderr);
  };
}

void FinishProgress(const std::function<void(int64_t, int64_t)>& bar) {
  if (bar) std::fprintf(stderr, "\n");
}

}  // namespace brickrt::cli
