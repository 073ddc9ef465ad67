// Grouping rows by expert, and the sampler's greedy / top-k / top-p / seeding behaviour.
#include <gtest/gtest.h>

#include <map>

#include "bricks/dispatch.h"
#include "bricks/sampler.h"

namespace brickrt {
namespace {

TEST(ExpertGroups, GroupsEveryPairOnceInRowOrderWithItsGate) {
  // 4 rows, k = 2, 5 experts; expert 3 gets nothing.
  const int32_t ids[] = {1, 0, 4, 1, 0, 2, 1, 4};
  const float gates[] = {.5f, .4f, .6f, .3f, .7f, .2f, .9f, .1f};
  ExpertGroups g;
  g.Reserve(8, 5);
  g.Build(ids, gates, 4, 2, 5);
  EXPECT_EQ(g.offsets, (std::vector<int32_t>{0, 2, 5, 6, 6, 8}));
  EXPECT_EQ(g.rows, (std::vector<int32_t>{0, 2, 0, 1, 3, 2, 1, 3}));
  EXPECT_EQ(g.gates, (std::vector<float>{.4f, .7f, .5f, .3f, .9f, .2f, .6f, .1f}));
  EXPECT_EQ(g.count(3), 0);
}

TEST(Sampler, GreedyTakesTheLowestIdAmongEqualMaxima) {
  Sampler s(SamplingParams{0.0f, 0, 1.0f, 1}, 5);
  const float logits[] = {1.0f, 3.0f, 2.0f, 3.0f, -1.0f};
  EXPECT_EQ(s.Sample(logits), 1);
}

TEST(Sampler, TopKOneIsGreedyAndTinyTopPIsGreedy) {
  const float logits[] = {0.1f, 0.2f, 2.5f, 0.3f, 2.4f};
  Sampler k1(SamplingParams{1.0f, 1, 1.0f, 42}, 5);
  Sampler p_small(SamplingParams{1.0f, 0, 1e-6f, 42}, 5);
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(k1.Sample(logits), 2);
    EXPECT_EQ(p_small.Sample(logits), 2);
  }
}

TEST(Sampler, TopKAndTopPNeverLeaveTheirCandidates) {
  // Probabilities ∝ exp(logit): ids 3 and 0 hold ~0.88 of the mass.
  const float logits[] = {2.0f, 0.0f, -1.0f, 3.0f, 0.5f, -2.0f};
  Sampler top2(SamplingParams{1.0f, 2, 1.0f, 3}, 6);
  Sampler nucleus(SamplingParams{1.0f, 0, 0.8f, 3}, 6);
  std::map<int32_t, int> seen_k, seen_p;
  for (int i = 0; i < 2000; ++i) {
    ++seen_k[top2.Sample(logits)];
    ++seen_p[nucleus.Sample(logits)];
  }
  EXPECT_EQ(seen_k.size(), 2u);
  EXPECT_TRUE(seen_k.count(3) && seen_k.count(0));
  // Nucleus 0.8: id 3 alone has ~0.65 < 0.8, so ids 3 and 0 are kept.
  EXPECT_EQ(seen_p.size(), 2u);
  EXPECT_TRUE(seen_p.count(3) && seen_p.count(0));
  // Renormalised over {3, 0}: P(3) = e³ / (e³ + e²) ≈ 0.731.
  EXPECT_NEAR(seen_k[3] / 2000.0, 0.731, 0.04);
}

TEST(Sampler, SameSeedSameTokensDifferentSeedDifferentTokens) {
  std::vector<float> logits(100, 0.0f);  // uniform: every draw is random
  auto draw = [&](uint64_t seed) {
    Sampler s(SamplingParams{1.0f, 0, 1.0f, seed}, 100);
    std::vector<int32_t> out;
    for (int i = 0; i < 20; ++i) out.push_back(s.Sample(logits.data()));
    return out;
  };
  EXPECT_EQ(draw(1), draw(1));
  EXPECT_NE(draw(1), draw(2));
}

TEST(Sampler, TemperatureSharpens) {
  const float logits[] = {1.0f, 0.0f};
  Sampler cold(SamplingParams{0.1f, 0, 1.0f, 5}, 2);  // P(0) = 1/(1+e^-10) ≈ 0.99995
  int zeros = 0;
  for (int i = 0; i < 1000; ++i) zeros += cold.Sample(logits) == 0;
  EXPECT_GE(zeros, 995);
}

TEST(Sampler, TinyTemperatureIsTheGreedyLimitNotNaN) {
  // 1/T overflows to inf for T = 1e-45; the sampler must still pick the most likely token.
  const float logits[] = {0.5f, 2.0f, 1.0f, -3.0f};
  Sampler s(SamplingParams{1e-45f, 0, 1.0f, 9}, 4);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(s.Sample(logits), 1);
}

TEST(Sampler, RejectsOutOfRangeParameters) {
  EXPECT_FALSE(ValidateSampling(SamplingParams{-1.0f, 0, 1.0f, 0}).ok());
  EXPECT_FALSE(ValidateSampling(SamplingParams{1.0f, -2, 1.0f, 0}).ok());
  EXPECT_FALSE(ValidateSampling(SamplingParams{1.0f, 0, 0.0f, 0}).ok());
  EXPECT_FALSE(ValidateSampling(SamplingParams{1.0f, 0, 1.5f, 0}).ok());
  EXPECT_TRUE(ValidateSampling(SamplingParams{0.0f, 0, 1.0f, 0}).ok());
}

}  // namespace
}  // namespace brickrt
