// LayerNorm: F32 kernel vs the double reference, in-place use, and a hand-computed row.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "kernels/cpu/layernorm.h"

namespace brickrt::kernels {
namespace {

TEST(LayerNorm, MatchesReferenceOddWidths) {
  std::mt19937 rng(3);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  for (int64_t D : {1, 7, 15, 17, 100, 1024, 1000}) {
    const int64_t M = 5;
    std::vector<float> x(static_cast<size_t>(M * D)), w(static_cast<size_t>(D)), b(static_cast<size_t>(D));
    // Residual-stream-like rows: a large offset (|mean| ≫ std) that a one-pass variance would get wrong.
    for (size_t i = 0; i < x.size(); ++i) x[i] = 30.0f + dist(rng);
    for (auto& v : w) v = dist(rng);
    for (auto& v : b) v = dist(rng);
    std::vector<float> ref(x.size()), y(x.size());
    LayerNormRef(x.data(), M, D, w.data(), b.data(), 1e-5f, ref.data());
    LayerNorm(x.data(), M, D, w.data(), b.data(), 1e-5f, y.data());
    for (size_t i = 0; i < y.size(); ++i) {
      // F32 mean/variance over D terms with |x| ≈ 30: the normalised value carries ~D·2^-24·|x|/std
      // relative error at worst; 2e-5·(1 + |w|) absolute covers D = 1024 with margin.
      const float tol = 2e-5f * (1.0f + std::fabs(w[i % static_cast<size_t>(D)]));
      ASSERT_NEAR(y[i], ref[i], tol) << "D=" << D << " i=" << i;
    }
    // In place (y aliases x) must give the same numbers.
    std::vector<float> inplace = x;
    LayerNorm(inplace.data(), M, D, w.data(), b.data(), 1e-5f, inplace.data());
    EXPECT_EQ(inplace, y) << "D=" << D;
  }
}

TEST(LayerNorm, HandComputedRow) {
  // x = [1, 2, 3, 4]: mean 2.5, biased variance 1.25; with eps = 0 the normalised row is
  // (x − 2.5)/√1.25 = [−1.3416408, −0.4472136, 0.4472136, 1.3416408]; then ·w + b with w = 2, b = 1.
  const float x[4] = {1, 2, 3, 4};
  const float w[4] = {2, 2, 2, 2};
  const float b[4] = {1, 1, 1, 1};
  const float want[4] = {-1.6832816f, 0.1055728f, 1.8944272f, 3.6832816f};
  float y[4], r[4];
  LayerNorm(x, 1, 4, w, b, 0.0f, y);
  LayerNormRef(x, 1, 4, w, b, 0.0f, r);
  for (int i = 0; i < 4; ++i) {
    EXPECT_NEAR(y[i], want[i], 1e-6f);  // a few F32 ulps
    EXPECT_NEAR(r[i], want[i], 1e-6f);
  }
}

TEST(LayerNorm, EpsIsInsideTheSquareRoot) {
  // A constant row has variance 0: y = (x − mean)/√eps · w + b = b exactly, and eps = 1 with the
  // row [0, 2] (variance 1) gives ±1/√2, not ±1/(1 + 1).
  const float x[2] = {0, 2};
  const float w[2] = {1, 1};
  const float b[2] = {0, 0};
  float y[2];
  LayerNorm(x, 1, 2, w, b, 1.0f, y);
  EXPECT_NEAR(y[0], -0.70710678f, 1e-6f);
  EXPECT_NEAR(y[1], 0.70710678f, 1e-6f);
}

}  // namespace
}  // namespace brickrt::kernels
