// The tokenizer a command reads and writes text with when no --tokenizer is given: the model's own,
// stored with it in the registry (issue #7), a submodel spec's base model's, or a checkpoint
// directory's tokenizer files.
#pragma once

#include <optional>
#include <string>

#include "cli/args.h"
#include "core/status.h"
#include "core/tokenizer.h"

namespace brickrt::cli {

// What a command runs on; exactly one field is set.
struct ModelSourceRef {
  std::string checkpoint;  // a checkpoint directory
  std::string spec;        // a submodel spec file
  std::string model_ref;   // a registry model: NAME, NAME@VERSION, NAME:TAG
};

// A directory is a checkpoint, a file (or a path with '/', or .yaml/.yml) a spec, anything else a
// registry reference: the same rule as brick run's MODEL.
ModelSourceRef ClassifyModelSource(const std::string& source);

struct ModelTokenizer {
  std::optional<Tokenizer> tokenizer;  // nullopt: the model has none
  std::string label;                   // "model NAME@V", "checkpoint DIR", "spec FILE (model NAME@V)"
  std::string manifest;                // the resolved NAME@V for a registry model or spec, else empty
};

// Loads the source's tokenizer, opening the registry (--registry, read-only) for a model or spec.
// Errors: as ResolveModel / ReadSubmodelSpec / Registry::LoadTokenizer; a checkpoint's broken
// tokenizer file, naming it.
Result<ModelTokenizer> LoadModelTokenizer(const ArgParser& a, const ModelSourceRef& source);

// What to do about a model without a tokenizer (the end of that error): import it with one, or pass
// --tokenizer PATH.
std::string NoTokenizerAdvice();

}  // namespace brickrt::cli
