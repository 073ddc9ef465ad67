// EvaluatePerplexity: windows of `context` tokens advancing by `stride`, log-softmax in double.
#include "cli/perplexity.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <string>
#include <vector>

#include "node/session_factory.h"
#include "bricks/session.h"

namespace brickrt::cli {
namespace {

// -log softmax(row)[target], in double: a 50k-entry sum of exp in float would lose the small terms.
double TokenNll(const float* row, int64_t V, int32_t target) {
  float m = row[0];
  for (int64_t v = 1; v < V; ++v) m = std::max(m, row[v]);
  double sum = 0;
  for (int64_t v = 0; v < V; ++v) sum += std::exp(static_cast<double>(row[v]) - m);
  return std::log(sum) + m - static_cast<double>(row[target]);
}

}  // namespace

Result<EvalResult> EvaluatePerplexity(std::shared_ptr<const Model> model, std::span<const int32_t> tokens,
                                      const EvalOptions& opts) {
  const int64_t n = static_cast<int64_t>(tokens.size());
  if (n < 2) return InvalidArgument("the data has " + std::to_string(n) + " token(s); perplexity needs at least 2");
  if (opts.context < 2) return InvalidArgument("--context must be >= 2, got " + std::to_string(opts.context));
  if (opts.stride < 1 || opts.stride > opts.context) {
    return InvalidArgument("--stride must be in [1, context = " + std::to_string(opts.context) + "], got " +
                           std::to_string(opts.stride));
  }
  const int64_t V = model->config().vocab_size;
  for (int64_t i = 0; i < n; ++i) {
    if (tokens[static_cast<size_t>(i)] < 0 || tokens[static_cast<size_t>(i)] >= V) {
      return InvalidArgument("token " + std::to_string(i) + " (id " + std::to_string(tokens[static_cast<size_t>(i)]) +
                             ") is outside the vocabulary of " + std::to_string(V) + " ids");
    }
  }
  const int64_t context = std::min(opts.context, n);
  const int64_t chunk = std::clamp<int64_t>(opts.chunk, 1, context);
  SessionOptions so;
  so.max_sequences = 1;
  so.max_context = context;
  so.max_step_tokens = chunk;
  so.trace = opts.trace;
  BRICK_ASSIGN_OR_RETURN(auto session, CreateSession(model, opts.plan, so, opts.pool));
  std::vector<float> logits(static_cast<size_t>(chunk * V));

  EvalResult r;
  double nll_sum = 0;
  const auto t0 = std::chrono::steady_clock::now();
  int64_t scored_to = 1;  // tokens [1, scored_to) are scored; token 0 has nothing before it
  for (int64_t begin = 0, end = 0; end < n; begin = std::min(begin + opts.stride, end - 1)) {
    end = std::min(begin + context, n);
    BRICK_ASSIGN_OR_RETURN(int seq, session->AddSequence());
    // Logits of window position j predict token begin + j + 1.
    for (int64_t at = begin; at < end; at += chunk) {
      const int64_t len = std::min(chunk, end - at);
      const SequenceChunk c{seq, tokens.subspan(static_cast<size_t>(at), static_cast<size_t>(len))};
      Status st = session->Forward({&c, 1}, /*all_positions=*/true, logits.data());
      if (!st.ok()) {
        session->RemoveSequence(seq);
        return st;
      }
      r.forwarded += len;
      for (int64_t j = 0; j < len; ++j) {
        const int64_t target = at + j + 1;
        if (target < scored_to || target >= end) continue;
        nll_sum += TokenNll(logits.data() + j * V, V, tokens[static_cast<size_t>(target)]);
        ++r.tokens;
      }
    }
    session->RemoveSequence(seq);
    scored_to = std::max(scored_to, end);
    ++r.windows;
    if (opts.progress) opts.progress(r.tokens, n - 1);
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.nll = nll_sum / static_cast<double>(r.tokens);
  r.perplexity = std::exp(r.nll);
  return r;
}

}  // namespace brickrt::cli
