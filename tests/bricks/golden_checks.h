// The checks every golden case runs (tests/bricks/golden_test.cpp, lora_golden_test.cpp): a model's
// logits and its greedy decode against the NumPy reference's files in a case directory.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "bricks/generator.h"
#include "bricks/session.h"
#include "core/npy.h"
#include "test_util.h"

namespace brickrt::testing {

inline float MaxAbsDiff(const std::vector<float>& got, const std::vector<float>& want) {
  float m = 0;
  for (size_t i = 0; i < want.size(); ++i) m = std::max(m, std::fabs(got[i] - want[i]));
  return m;
}

// Each prompt alone (all positions) against dir/logits_K.npy, within `tolerance`.
inline void ExpectPromptLogitsMatch(std::shared_ptr<const Model> model, const std::string& dir,
                                    const std::vector<std::vector<int32_t>>& prompts, float tolerance) {
  ThreadPool pool(2);
  const int64_t V = model->config().vocab_size;
  for (size_t k = 0; k < prompts.size(); ++k) {
    auto golden = ReadNpyF32(dir + "/logits_" + std::to_string(k) + ".npy");
    ASSERT_TRUE(golden.ok()) << golden.status().ToString();
    const int64_t T = static_cast<int64_t>(prompts[k].size());
    ASSERT_EQ(golden->first, (Shape{T, V}));
    Session session(model, SessionOptions{1, T, T}, &pool);
    auto seq = session.AddSequence();
    ASSERT_TRUE(seq.ok());
    std::vector<float> logits(static_cast<size_t>(T * V));
    const SequenceChunk chunk{*seq, prompts[k]};
    ASSERT_TRUE(session.Forward({&chunk, 1}, true, logits.data()).ok());
    EXPECT_LE(MaxAbsDiff(logits, golden->second), tolerance) << "prompt " << k;
  }
}

// All prompts as one batch, greedy with the KV cache, against dir/greedy.json (the reference
// recomputes every step from scratch).
inline void ExpectGreedyDecodeMatches(std::shared_ptr<const Model> model, const std::string& dir,
                                      const std::vector<std::vector<int32_t>>& prompts) {
  auto greedy = ParseJson(ReadFile(dir + "/greedy.json"));
  ASSERT_TRUE(greedy.ok()) << greedy.status().ToString();
  const auto& entries = greedy->Find("greedy")->as_array();
  ASSERT_EQ(entries.size(), prompts.size());
  ThreadPool pool(2);
  Session session(model, SessionOptions{3, 64, 64}, &pool);
  GenerateOptions opts;
  opts.max_new_tokens = *entries[0].Find("n")->as_int64();
  opts.sampling.temperature = 0;
  opts.stop_at_eos = false;
  auto result = Generate(session, prompts, opts);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  for (const JsonValue& e : entries) {
    const auto idx = static_cast<size_t>(*e.Find("prompt_index")->as_int64());
    EXPECT_EQ(result->generated[idx], IdsFromJson(*e.Find("tokens"))) << "prompt " << idx;
  }
}

}  // namespace brickrt::testing
