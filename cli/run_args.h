// brick run's options and output (cli/cmd_run.cpp runs the model): prompts as token ids or as text
// (encoded with a tokenizer), sampling, and the result as ids, text or one JSON object.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "bricks/generator.h"
#include "cli/args.h"
#include "core/device_ref.h"
#include "core/status.h"
#include "core/tokenizer.h"

namespace brickrt::cli {

struct RunArgs {
  std::string checkpoint;  // a checkpoint directory, or empty
  std::string spec;        // a submodel spec file (YAML), or empty
  std::string model_ref;   // a registry model reference, or empty
  // --device cpu|cuda:N: where this process runs the model (for a spec: its placement.device).
  std::optional<DeviceRef> device;
  std::vector<std::vector<int32_t>> prompts;
  GenerateOptions gen;
  int threads = 0;
  std::string dump_logits;
  std::string trace;
  std::string server;  // a coordinator's endpoint: generate there instead of loading a model
  int64_t timeout_ms = 60000;
  bool json = false;
  // --prompt TEXT: prompts given as text, encoded with `tokenizer`; the output is text too.
  std::vector<std::string> prompt_texts;
  std::optional<Tokenizer> tokenizer;  // --tokenizer PATH, else (with --prompt) the model's own
};

// The options of brick run, checked (usage errors are InvalidArgument).
Result<RunArgs> ReadArgs(const ArgParser& a);

// Just what to run: MODEL (a checkpoint directory, a spec file or a registry reference), --checkpoint
// or --server, into out->checkpoint / spec / model_ref / server, and --device (brick chat uses it too).
Status ReadModelSource(const ArgParser& a, RunArgs* out);

// Declares the options ReadArgs reads.
void AddRunOptions(ArgParser& a);

// Prints text as a single prompt's tokens arrive (brick run --prompt): only complete UTF-8, flushed
// after every token, then a newline at the end.
class TextStream {
 public:
  explicit TextStream(const Tokenizer& tokenizer) : decoder_(tokenizer) {}
  void Token(int32_t id);
  void Finish();

 private:
  StreamDecoder decoder_;
};

// Ids (or text, for --prompt) on stdout and speed on stderr, or one JSON object (--json; with text
// prompts it has "prompt_text" and "text" too). streamed: the text was already printed by a
// TextStream. manifest: NAME@VERSION (empty for a checkpoint).
void PrintResult(const RunArgs& r, const GenerateResult& g, double load_seconds, const std::string& manifest,
                 bool streamed = false);

}  // namespace brickrt::cli
