// A model's tokenizer for the CLI: from the registry, a spec's base model or a checkpoint directory.
#include "cli/model_tokenizer.h"

#include <filesystem>

#include "cli/registry_access.h"
#include "core/submodel_spec.h"
#include "registry/registry.h"
#include "registry/tokenizer_files.h"

namespace brickrt::cli {

ModelSourceRef ClassifyModelSource(const std::string& source) {
  ModelSourceRef out;
  std::error_code ec;
  const std::string ext = std::filesystem::path(source).extension().string();
  if (std::filesystem::is_directory(source, ec)) {
    out.checkpoint = source;
  } else if (std::filesystem::is_regular_file(source, ec) || ext == ".yaml" || ext == ".yml" ||
             source.find('/') != std::string::npos) {
    out.spec = source;
  } else {
    out.model_ref = source;
  }
  return out;
}

Result<ModelTokenizer> LoadModelTokenizer(const ArgParser& a, const ModelSourceRef& source) {
  ModelTokenizer out;
  if (!source.checkpoint.empty()) {
    out.label = "checkpoint " + source.checkpoint;
    BRICK_ASSIGN_OR_RETURN(std::optional<TokenizerFiles> files, ReadTokenizerFiles(source.checkpoint));
    if (files) {
      BRICK_ASSIGN_OR_RETURN(Tokenizer t, BuildTokenizer(*files, source.checkpoint));
      out.tokenizer = std::move(t);
    }
    return out;
  }
  std::string ref = source.model_ref;
  if (!source.spec.empty()) {
    BRICK_ASSIGN_OR_RETURN(SubmodelSpec spec, ReadSubmodelSpec(source.spec));
    ref = spec.model;
  }
  BRICK_ASSIGN_OR_RETURN(std::unique_ptr<Registry> reg, OpenRegistry(a, /*writes=*/false));
  BRICK_ASSIGN_OR_RETURN(ManifestRecord m, reg->ResolveModel(ref));
  if (m.kind != ManifestKind::kModel) return InvalidArgument(m.Ref() + " is a plugin, not a model");
  out.manifest = m.Ref();
  out.label = source.spec.empty() ? "model " + m.Ref() : "spec " + source.spec + " (model " + m.Ref() + ")";
  BRICK_ASSIGN_OR_RETURN(out.tokenizer, reg->LoadTokenizer(m));
  return out;
}

std::string NoTokenizerAdvice() {
  return "import the model with its tokenizer files (brick import DIR --name NAME [--tokenizer PATH]), pass "
         "--tokenizer PATH (tokenizer.json, or a directory with vocab.json + merges.txt)";
}

}  // namespace brickrt::cli
