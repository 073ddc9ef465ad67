// The checks a session makes on its options and on each step's chunks, said once for the CPU Session
// and the GPU CudaSession, so both refuse the same inputs with the same messages.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "bricks/session.h"
#include "core/status.h"

namespace brickrt {

// Each option >= 1 and within the limits a session supports (counts < 2^16, sizes <= 2^24 tokens).
Status ValidateSessionOptions(const SessionOptions& opts);

// An MLP placement against the model: no more layers than it has, one owner per kept expert in a
// layer that has owners, executors that exist and are not null.
Status ValidatePlacement(const Model& model, const MlpPlacement& placement);

// The error for a session whose planned bytes `need` exceed `have` (`where`: "this machine's" memory,
// a GPU's ...).
Status SessionTooLarge(const SessionOptions& opts, int64_t need, int64_t have, const std::string& where);

// A step's chunks: every sequence alive (length(seq) >= 0; -1 for an unknown one) and at most once,
// chunks non-empty, token ids in [0, vocab), no sequence beyond max_context, at most max_step_tokens
// tokens in all. `length`: int64_t(int seq).
template <typename LengthFn>
Status ValidateStep(std::span<const SequenceChunk> chunks, int64_t vocab, const SessionOptions& opts,
                    LengthFn&& length);

namespace step_validation_internal {
Status CheckChunk(std::span<const SequenceChunk> chunks, size_t i, int64_t len, int64_t vocab,
                  const SessionOptions& opts);
Status CheckTotal(int64_t total, const SessionOptions& opts);
}  // namespace step_validation_internal

template <typename LengthFn>
Status ValidateStep(std::span<const SequenceChunk> chunks, int64_t vocab, const SessionOptions& opts,
                    LengthFn&& length) {
  int64_t total = 0;
  for (size_t i = 0; i < chunks.size(); ++i) {
    BRICK_RETURN_IF_ERROR(step_validation_internal::CheckChunk(chunks, i, length(chunks[i].seq), vocab, opts));
    total += static_cast<int64_t>(chunks[i].tokens.size());
  }
  return step_validation_internal::CheckTotal(total, opts);
}

}  // namespace brickrt
