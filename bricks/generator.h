// Generate: prefill a batch of prompts together, then decode one token per live sequence per step
// until each has max_new_tokens (or hits EOS), timing both phases.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "bricks/sampler.h"
#include "bricks/model_session.h"
#include "bricks/session.h"
#include "core/status.h"

namespace brickrt {

struct GenerateOptions {
  int64_t max_new_tokens = 16;
  SamplingParams sampling;       // sequence i samples with seed sampling.seed + i
  bool stop_at_eos = true;       // stop a sequence after it emits cfg.eos_token_id
  // Told about every token as soon as it is sampled (prompt index, token id), e.g. to stream text;
  // on the calling thread, in generation order. Optional.
  std::function<void(size_t prompt, int32_t token)> on_token;
};

struct GenerateResult {
  std::vector<std::vector<int32_t>> generated;  // per prompt
  int64_t prefill_tokens = 0;
  int64_t decode_tokens = 0;  // tokens produced by decode steps (the first token comes from prefill)
  double prefill_seconds = 0;
  double decode_seconds = 0;
};

// The session must have room for prompts.size() sequences and prompt + max_new_tokens context each;
// the sequences are removed again before returning.
Result<GenerateResult> Generate(ModelSession& session, const std::vector<std::vector<int32_t>>& prompts,
                                const GenerateOptions& opts);

}  // namespace brickrt
