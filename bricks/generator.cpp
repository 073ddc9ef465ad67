// Generation loop: one Forward for all prompts, then batched single-token steps. Buffers are sized
// before the loop so decode steps do not allocate.
#include "bricks/generator.h"

#include <chrono>

namespace brickrt {
namespace {
double Seconds(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}
}  // namespace

Result<GenerateResult> Generate(ModelSession& session, const std::vector<std::vector<int32_t>>& prompts,
                                const GenerateOptions& opts) {
  BRICK_RETURN_IF_ERROR(ValidateSampling(opts.sampling));
  if (prompts.empty()) return InvalidArgument("no prompts");
  if (opts.max_new_tokens < 0) return InvalidArgument("the number of new tokens must be >= 0");
  const ModelConfig& cfg = session.model().config();
  const size_t B = prompts.size();

  std::vector<int> seqs;
  auto release = [&] {
    for (int s : seqs) session.RemoveSequence(s);
  };
  for (size_t i = 0; i < B; ++i) {
    if (prompts[i].empty()) {
      release();
      return InvalidArgument("prompt " + std::to_string(i) + " is empty");
    }
    auto s = session.AddSequence();
    if (!s.ok()) {
      release();
      return s.status();
    }
    seqs.push_back(*s);
  }

  GenerateResult res;
  res.generated.resize(B);
  std::vector<Sampler> samplers;
  for (size_t i = 0; i < B; ++i) {
    SamplingParams p = opts.sampling;
    p.seed += i;
    samplers.emplace_back(p, cfg.vocab_size);
    res.generated[i].reserve(static_cast<size_t>(opts.max_new_tokens));
  }
  std::vector<float> logits(B * static_cast<size_t>(cfg.vocab_size));
  std::vector<SequenceChunk> chunks(B);
  std::vector<int32_t> last(B);
  std::vector<size_t> live;  // prompt index of each chunk
  live.reserve(B);

  for (size_t i = 0; i < B; ++i) {
    chunks[i] = SequenceChunk{seqs[i], prompts[i]};
    res.prefill_tokens += static_cast<int64_t>(prompts[i].size());
  }
  auto t0 = std::chrono::steady_clock::now();
  Status st = session.Forward(chunks, /*all_positions=*/false, logits.data());
  res.prefill_seconds = Seconds(t0, std::chrono::steady_clock::now());
  if (!st.ok()) {
    release();
    return st;
  }
  if (opts.max_new_tokens == 0) {
    release();
    return res;
  }
  // The prefill's logits give every sequence its first new token.
  for (size_t i = 0; i < B; ++i) {
    last[i] = samplers[i].Sample(logits.data() + i * static_cast<size_t>(cfg.vocab_size));
    res.generated[i].push_back(last[i]);
    if (opts.on_token) opts.on_token(i, last[i]);
    const bool done = (opts.stop_at_eos && last[i] == cfg.eos_token_id) || opts.max_new_tokens == 1;
    if (!done) live.push_back(i);
  }

  t0 = std::chrono::steady_clock::now();
  while (!live.empty()) {
    for (size_t c = 0; c < live.size(); ++c) chunks[c] = SequenceChunk{seqs[live[c]], {&last[live[c]], 1}};
    st = session.Forward({chunks.data(), live.size()}, false, logits.data());
    if (!st.ok()) break;
    size_t kept = 0;
    for (size_t c = 0; c < live.size(); ++c) {
      const size_t i = live[c];
      last[i] = samplers[i].Sample(logits.data() + c * static_cast<size_t>(cfg.vocab_size));
      res.generated[i].push_back(last[i]);
      if (opts.on_token) opts.on_token(i, last[i]);
      ++res.decode_tokens;
        const bool done = (opts.stop_at_eos && last[i] == cfg.eos_token_id) ||
                        static_cast<int64_t>(res.generated[i].size()) >= opts.max_new_tokens;
      if (!done) live[kept++] = i;
    }
    live.resize(kept);
  }
  res.decode_seconds = Seconds(t0, std::chrono::steady_clock::now());
  release();
  if (!st.ok()) return st;
  return res;
}

}  // namespace brickrt
