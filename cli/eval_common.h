// What brick eval, profile and prune share: loading the model to measure, reading the token data
// against its vocabulary, the --context/--stride options and a progress bar on a terminal.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "bricks/model.h"
#include "cli/args.h"
#include "cli/perplexity.h"
#include "core/token_data.h"
#include "core/tokenizer.h"
#include "registry/registry.h"

namespace brickrt::cli {

struct MeasuredModel {
  std::shared_ptr<const Model> model;
  std::optional<ManifestRecord> manifest;  // a registry model (not a spec)
  std::string label;                       // NAME@VERSION, or the spec file
  std::optional<Tokenizer> tokenizer;      // the model's (a spec: its base model's), when it has one
};

// ref: a registry model (NAME, NAME@VERSION, NAME:TAG) or a submodel spec file (.yaml/.yml or a path).
Result<MeasuredModel> LoadMeasuredModel(const Registry& reg, const std::string& ref);

// ReadTokenFile + CheckVocabulary against cfg's vocabulary. A file that is not token ids (.ids,
// .tokens, .npy) is text: the whole file encoded with `tokenizer` (one document; each id's position
// is the line:col where its bytes start), or an error naming the file when tokenizer is null.
Result<TokenData> ReadData(const std::string& path, const ModelConfig& cfg, const Tokenizer* tokenizer = nullptr);

// Adds --context and --stride to a parser.
void AddWindowOptions(ArgParser& a);
// Reads them (defaults: context 1024, stride = context / 2), checking context >= 2, 1 <= stride <= context.
Result<EvalOptions> WindowOptions(const ArgParser& a);

// A progress callback drawing "label [=====     ] 1234/5678 tokens" on stderr when stderr is a
// terminal; empty otherwise. Call FinishProgress after the run to end the line.
std::function<void(int64_t, int64_t)> ProgressBar(const std::string& label);
void FinishProgress(const std::function<void(int64_t, int64_t)>& bar);

}  // namespace brickrt::cli
