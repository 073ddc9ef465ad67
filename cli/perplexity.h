// Perplexity of a model over a token stream with a sliding window (brick eval, brick prune --eval),
// and the same pass feeding a trace sink (brick profile). Library-level so tests can call it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>

#include "bricks/model.h"
#include "bricks/trace.h"
#include "core/status.h"
#include "core/thread_pool.h"
#include "node/split.h"

namespace brickrt::cli {

struct EvalOptions {
  int64_t context = 1024;  // tokens per window (>= 2)
  int64_t stride = 512;    // how far each window advances (1..context)
  int64_t chunk = 256;     // tokens per Forward call inside a window (bounds the logits buffer)
  ThreadPool* pool = nullptr;
  TraceSink* trace = nullptr;  // told about every block of every Forward (brick profile)
  // Where the model runs (node/session_factory.h: a plan whose device is a GPU runs it there); null:
  // the CPU. Not owned.
  const SplitPlan* plan = nullptr;
  // Called after each window with (tokens scored so far, tokens to score); may be empty.
  std::function<void(int64_t, int64_t)> progress;
};

struct EvalResult {
  int64_t tokens = 0;       // tokens scored: every token but the first, each once
  int64_t windows = 0;      // windows run
  int64_t forwarded = 0;    // tokens run through the model (overlapping windows run some twice)
  double nll = 0;           // mean negative log-likelihood (nats) over the scored tokens
  double perplexity = 0;    // exp(nll)
  double seconds = 0;       // wall time of the forward passes
};

// HF-style sliding window: each window holds `context` tokens (the last one ends at the data's end) and
// starts from an empty cache; the next one starts `stride` tokens later, but never past the last token
// scored, so every token after the first is scored exactly once (with stride == context consecutive
// windows share one token). A window scores only the tokens no earlier window scored, each from the
// logits of the token before it in the same window.
// Errors: InvalidArgument for fewer than 2 tokens, context < 2, stride outside [1, context] or an id
// outside the model's vocabulary; as CreateSession / Forward.
Result<EvalResult> EvaluatePerplexity(std::shared_ptr<const Model> model, std::span<const int32_t> tokens,
                                      const EvalOptions& opts);

}  // namespace brickrt::cli
