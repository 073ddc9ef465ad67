// Session option and step checks shared by Session and CudaSession.
#include "bricks/step_validation.h"

namespace brickrt {

Status ValidatePlacement(const Model& model, const MlpPlacement& p) {
  if (p.owner.size() > model.layers().size())
    return InvalidArgument("MLP placement has " + std::to_string(p.owner.size()) + " layers, the model " +
                           std::to_string(model.layers().size()));
  for (const ExpertExecutor* e : p.executors)
    if (e == nullptr) return InvalidArgument("MLP placement lists a null executor");
  for (size_t l = 0; l < p.owner.size(); ++l) {
    const std::vector<int32_t>& o = p.owner[l];
    if (o.empty()) continue;
    if (o.size() != model.layers()[l].mlp.size())
      return InvalidArgument("MLP placement of layer " + std::to_string(l) + " has " + std::to_string(o.size()) +
                             " owners for " + std::to_string(model.layers()[l].mlp.size()) + " kept experts");
    for (int32_t x : o) {
      if (x != MlpPlacement::kLocal && (x < 0 || static_cast<size_t>(x) >= p.executors.size()))
        return InvalidArgument("MLP placement of layer " + std::to_string(l) + " names executor " +
                               std::to_string(x) + " of " + std::to_string(p.executors.size()));
    }
  }
  return Status::Ok();
}

namespace {
constexpr int kMaxSequences = 1 << 16;
constexpr int64_t kMaxTokens = int64_t{1} << 24;
}  // namespace

Status ValidateSessionOptions(const SessionOptions& opts) {
  if (opts.max_sequences < 1 || opts.max_sequences > kMaxSequences)
    return InvalidArgument("max_sequences must be in [1, " + std::to_string(kMaxSequences) + "]");
  if (opts.max_context < 1 || opts.max_context > kMaxTokens)
    return InvalidArgument("context length " + std::to_string(opts.max_context) + " is outside [1, " +
                           std::to_string(kMaxTokens) + "] tokens");
  if (opts.max_step_tokens < 1 || opts.max_step_tokens > kMaxTokens)
    return InvalidArgument("tokens per step must be in [1, " + std::to_string(kMaxTokens) + "]");
  return Status::Ok();
}

Status SessionTooLarge(const SessionOptions& opts, int64_t need, int64_t have, const std::string& where) {
  return OutOfRange("a session for " + std::to_string(opts.max_sequences) + " sequence(s) of up to " +
                    std::to_string(opts.max_context) + " tokens needs " + std::to_string(need >> 20) +
                    " MiB of KV cache and scratch, more than " + where + " " + std::to_string(have >> 20) +
                    " MiB; ask for fewer tokens or sequences");
}

namespace step_validation_internal {

Status CheckChunk(std::span<const SequenceChunk> chunks, size_t i, int64_t len, int64_t vocab,
                  const SessionOptions& opts) {
  const SequenceChunk& c = chunks[i];
  if (len < 0) return InvalidArgument("unknown sequence " + std::to_string(c.seq));
  for (size_t j = 0; j < i; ++j)
    if (chunks[j].seq == c.seq)
      return InvalidArgument("sequence " + std::to_string(c.seq) + " appears twice in one step");
  if (c.tokens.empty()) return InvalidArgument("sequence " + std::to_string(c.seq) + ": empty chunk");
  for (int32_t t : c.tokens) {
    if (t < 0 || t >= vocab)
      return InvalidArgument("token id " + std::to_string(t) + " is outside the vocabulary [0, " +
                             std::to_string(vocab) + ")");
  }
  if (len + static_cast<int64_t>(c.tokens.size()) > opts.max_context)
    return OutOfRange("sequence " + std::to_string(c.seq) +
                      " would exceed max_context=" + std::to_string(opts.max_context) + " tokens");
  return Status::Ok();
}

Status CheckTotal(int64_t total, const SessionOptions& opts) {
  if (total > opts.max_step_tokens)
    return OutOfRange("step has " + std::to_string(total) +
                      " tokens, more than max_step_tokens=" + std::to_string(opts.max_step_tokens));
  return Status::Ok();
}

}  // namespace step_validation_internal
}  // namespace brickrt
