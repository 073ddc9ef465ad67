// brick run --trace FILE.jsonl: one JSON line per token per layer with the token (and its text piece
// when a tokenizer is known), the experts each block routed it to, their gates, where each ran (local
// or the node's name), each brick's digest and the block's time in that step.
#pragma once

#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "bricks/trace.h"
#include "core/status.h"
#include "core/tokenizer.h"

namespace brickrt::cli {

class JsonlTrace : public TraceSink {
 public:
  // digests: (attention, layer, expert id) -> brick digest (may be empty: a checkpoint has none).
  // nodes: executor index -> node name. tokenizer: for each line's "piece" (null: no pieces; it must
  // outlive the trace). Errors: IoError naming the path.
  static Result<std::unique_ptr<JsonlTrace>> Open(const std::string& path,
                                                  std::map<std::tuple<bool, int64_t, int64_t>, std::string> digests,
                                                  std::vector<std::string> nodes, const Tokenizer* tokenizer = nullptr);
  ~JsonlTrace() override;
  void OnBlock(const BlockTrace& t) override;
  Status Close();  // flushes; the first write error, if any

 private:
  JsonlTrace() = default;
  std::string Experts(const BlockTrace& t, int64_t row) const;

  std::FILE* f_ = nullptr;
  std::string path_;
  std::map<std::tuple<bool, int64_t, int64_t>, std::string> digests_;
  std::vector<std::string> nodes_;
  const Tokenizer* tokenizer_ = nullptr;
  std::vector<std::string> attention_;  // per row of the step: the attention block's JSON, until the MLP block
  bool failed_ = false;
};

}  // namespace brickrt::cli
