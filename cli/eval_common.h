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
#include "registry/registry.h"

namespace brickrt::cli {

struct MeasuredModel {
  std::shared_ptr<const Model> model;
  std::optional<ManifestRecord> manifest;  // a registry model (not a spec)
  std::string label;                       // NAME@VERSION, or the spec file
};

// ref: a registry model (NAME, NAME@VERSION, NAME:TAG) or a submodel spec file (.yaml/.yml or a path).
Result<MeasuredModel> LoadMeasuredModel(const Registry& reg, const std::string& ref);

// ReadTokenFile + CheckVocabulary against cfg's vocabulary.
Result<TokenData> ReadData(const std::string& path, const ModelConfig& cfg);

// Adds --context and --stride to a parser.
void AddWindowOptions(ArgParser& a);
// Reads them (defaults: context 1024, stride = context / 2), checking context >= 2, 1 <= stride <= context.
Result<EvalOptions> WindowOptions(const ArgParser& a);

// A progress callback drawing "label [=====     ] 1234/5678 tokens" on stderr when stderr is a
// terminal; empty otherwise. Call FinishProgress after the run to end the line.
std::function<void(int64_t, int64_t)> ProgressBar(const std::string& label);
void FinishProgress(const std::function<void(int64_t, int64_t)>& bar);

}  // namespace brickrt::cli
