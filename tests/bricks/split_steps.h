// Shared by the split-execution tests (tests/bricks/split_test.cpp, tests/node/server_test.cpp): a
// ragged batch run through a session with a given MLP placement, returning every logit it produced.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "bricks/session.h"

namespace brickrt::testing {

// The prompts RunSteps feeds, and the token each sequence then decodes three times.
inline const std::vector<std::vector<int32_t>>& StepPrompts() {
  static const std::vector<std::vector<int32_t>> prompts = {{5, 17, 99, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9}, {200}};
  return prompts;
}
inline const std::vector<int32_t>& StepNextTokens() {
  static const std::vector<int32_t> next = {7, 8, 9};
  return next;
}

// Prefill of three prompts of different lengths in one step, then three decode steps on `s` (room for
// 3 sequences of 32 tokens, 32 tokens a step); all logits.
inline std::vector<float> RunStepsOn(ModelSession& s, Status* error) {
  const auto& prompts = StepPrompts();
  const auto& next = StepNextTokens();
  std::vector<SequenceChunk> chunks;
  int64_t total = 0;
  for (const auto& p : prompts) {
    chunks.push_back({*s.AddSequence(), p});
    total += static_cast<int64_t>(p.size());
  }
  const int64_t V = s.model().config().vocab_size;
  std::vector<float> logits(static_cast<size_t>(total * V));
  *error = s.Forward(chunks, true, logits.data());
  if (!error->ok()) return {};
  std::vector<float> all = logits;
  for (int step = 0; step < 3; ++step) {
    std::vector<SequenceChunk> dec;
    for (size_t i = 0; i < prompts.size(); ++i) dec.push_back({chunks[i].seq, {&next[i], 1}});
    std::vector<float> out(static_cast<size_t>(3 * V));
    *error = s.Forward(dec, false, out.data());
    if (!error->ok()) return {};
    all.insert(all.end(), out.begin(), out.end());
  }
  return all;
}

// RunStepsOn a CPU Session with `placement`.
inline std::vector<float> RunSteps(std::shared_ptr<const Model> model, const MlpPlacement* placement, Status* error) {
  SessionOptions so{3, 32, 32};
  so.mlp_placement = placement;
  ThreadPool pool(2);
  auto session = Session::Create(model, so, &pool);
  EXPECT_TRUE(session.ok()) << session.status().ToString();
  if (!session.ok()) return {};
  return RunStepsOn(**session, error);
}

}  // namespace brickrt::testing
