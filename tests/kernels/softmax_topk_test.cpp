// SoftmaxTopK: exact expert ids (ties to the lower index, NaN last), gates vs the double reference,
// k = E, and the softmax-over-all-experts property (spec §2.3, G3).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "kernels/cpu/softmax_topk.h"

namespace brickrt::kernels {
namespace {

void CheckAgainstRef(const std::vector<float>& logits, int64_t M, int64_t E, int k) {
  std::vector<float> g(static_cast<size_t>(M * k)), gr(g.size());
  std::vector<int32_t> id(g.size()), idr(g.size());
  SoftmaxTopK(logits.data(), M, E, k, g.data(), id.data());
  SoftmaxTopKRef(logits.data(), M, E, k, gr.data(), idr.data());
  EXPECT_EQ(id, idr) << "E=" << E << " k=" << k;  // expert ids compare exactly
  for (size_t i = 0; i < g.size(); ++i) {
    // F32 exp and a sum of E terms vs double: a few ulps of the gate, E·2^-24 relative at worst.
    EXPECT_NEAR(g[i], gr[i], 1e-6f * gr[i] + 1e-9f) << "E=" << E << " i=" << i;
  }
  for (int64_t m = 0; m < M; ++m) {
    for (int i = 1; i < k; ++i) EXPECT_GE(g[m * k + i - 1], g[m * k + i]);  // descending
  }
}

TEST(SoftmaxTopK, RandomMatchesReference) {
  std::mt19937 rng(11);
  std::normal_distribution<float> dist(0.0f, 2.0f);
  for (int64_t E : {1, 2, 16, 32, 33, 300}) {
    const int64_t M = 7;
    std::vector<float> logits(static_cast<size_t>(M * E));
    for (auto& v : logits) v = dist(rng);
    for (int k : {1, 2, 4}) {
      if (k <= E) CheckAgainstRef(logits, M, E, k);
    }
    CheckAgainstRef(logits, M, E, static_cast<int>(E));  // k = E: the full ranking
  }
}

TEST(SoftmaxTopK, TiesGoToLowerIndex) {
  // Experts 1, 3 and 4 tie for first, 0 and 2 tie below: order must be 1, 3, 4, 0, 2.
  const std::vector<float> logits = {0.5f, 2.0f, 0.5f, 2.0f, 2.0f};
  std::vector<float> g(5);
  std::vector<int32_t> id(5);
  SoftmaxTopK(logits.data(), 1, 5, 5, g.data(), id.data());
  EXPECT_EQ(id, (std::vector<int32_t>{1, 3, 4, 0, 2}));
  EXPECT_EQ(g[0], g[1]);
  EXPECT_EQ(g[1], g[2]);
  SoftmaxTopKRef(logits.data(), 1, 5, 5, g.data(), id.data());
  EXPECT_EQ(id, (std::vector<int32_t>{1, 3, 4, 0, 2}));
  // All equal: ids 0..E-1 in order.
  const std::vector<float> flat(6, -1.0f);
  std::vector<int32_t> id2(3);
  std::vector<float> g2(3);
  SoftmaxTopK(flat.data(), 1, 6, 3, g2.data(), id2.data());
  EXPECT_EQ(id2, (std::vector<int32_t>{0, 1, 2}));
  EXPECT_NEAR(g2[0], 1.0f / 6.0f, 1e-7f);  // softmax over all six, not over the three kept
}

TEST(SoftmaxTopK, SoftmaxOverAllExpertsNotRenormalised) {
  // k = E gates are the full softmax: they sum to 1; with k = 2 they sum to less than 1.
  const std::vector<float> logits = {1.0f, 3.0f, -2.0f, 0.0f};
  std::vector<float> g(4);
  std::vector<int32_t> id(4);
  SoftmaxTopK(logits.data(), 1, 4, 4, g.data(), id.data());
  EXPECT_NEAR(std::accumulate(g.begin(), g.end(), 0.0f), 1.0f, 1e-6f);
  SoftmaxTopK(logits.data(), 1, 4, 2, g.data(), id.data());
  EXPECT_EQ(id[0], 1);
  EXPECT_EQ(id[1], 0);
  // Hand-computed: e^3 / (e + e^3 + e^-2 + 1) = 0.8390245, e / (…) = 0.1135496.
  EXPECT_NEAR(g[0], 0.8390245f, 1e-6f);
  EXPECT_NEAR(g[1], 0.1135496f, 1e-6f);
  EXPECT_LT(g[0] + g[1], 0.99f);
}

TEST(SoftmaxTopK, LargeLogitsDoNotOverflow) {
  // Max subtraction: logits near the F32 exp limit still give finite gates.
  const std::vector<float> logits = {1000.0f, 999.0f, -1000.0f};
  std::vector<float> g(2);
  std::vector<int32_t> id(2);
  SoftmaxTopK(logits.data(), 1, 3, 2, g.data(), id.data());
  EXPECT_EQ(id, (std::vector<int32_t>{0, 1}));
  EXPECT_NEAR(g[0], 0.7310586f, 1e-6f);  // σ(1)
  EXPECT_NEAR(g[1], 0.2689414f, 1e-6f);
}

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

// Runs both versions on one row and checks the ids against `want` exactly (every rank, k = E), then
// the top-k prefixes for every k. Gates are not checked: a NaN or +inf logit makes them NaN.
void ExpectRanking(const std::vector<float>& logits, const std::vector<int32_t>& want) {
  const int64_t E = static_cast<int64_t>(logits.size());
  for (int k = 1; k <= E; ++k) {
    std::vector<float> g(static_cast<size_t>(k));
    std::vector<int32_t> id(static_cast<size_t>(k), -7), idr(id);
    SoftmaxTopK(logits.data(), 1, E, k, g.data(), id.data());
    SoftmaxTopKRef(logits.data(), 1, E, k, g.data(), idr.data());
    const std::vector<int32_t> prefix(want.begin(), want.begin() + k);
    EXPECT_EQ(id, prefix) << "k=" << k;
    EXPECT_EQ(idr, prefix) << "ref, k=" << k;
  }
}

TEST(SoftmaxTopK, AllNaNRowGivesValidDistinctIds) {
  // Every comparison with NaN is false: the ids must still be 0..E-1 (NaN ties go low), never -1.
  ExpectRanking(std::vector<float>(5, kNaN), {0, 1, 2, 3, 4});
}

TEST(SoftmaxTopK, NaNRanksLast) {
  ExpectRanking({1.0f, kNaN, 3.0f, -2.0f}, {2, 0, 3, 1});
  ExpectRanking({kNaN, 1.0f, kNaN, 3.0f, 1.0f}, {3, 1, 4, 0, 2});
}

TEST(SoftmaxTopK, InfinitiesRankByValueAboveNaN) {
  // +inf first, then finite descending, then −inf (tied, low index first), then NaN.
  ExpectRanking({-kInf, 1.0f, kInf, kNaN, -kInf, 0.0f}, {2, 1, 5, 0, 4, 3});
  ExpectRanking({-kInf, -kInf, -kInf}, {0, 1, 2});
  ExpectRanking({kInf, kInf, -1.0f}, {0, 1, 2});
}

TEST(SoftmaxTopK, NaNRowDoesNotAffectOtherRows) {
  // Row 0 all NaN, row 1 finite: row 1's ids and gates are those of row 1 alone.
  const std::vector<float> logits = {kNaN, kNaN, kNaN, 0.5f, -1.0f, 2.0f};
  std::vector<float> g(4), g1(2);
  std::vector<int32_t> id(4), id1(2);
  SoftmaxTopK(logits.data(), 2, 3, 2, g.data(), id.data());
  SoftmaxTopK(logits.data() + 3, 1, 3, 2, g1.data(), id1.data());
  EXPECT_EQ(id, (std::vector<int32_t>{0, 1, 2, 0}));
  EXPECT_EQ(g[2], g1[0]);
  EXPECT_EQ(g[3], g1[1]);
  EXPECT_FALSE(std::isnan(g[2]));
}

}  // namespace
}  // namespace brickrt::kernels
