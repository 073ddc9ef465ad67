// Stick-breaking attention (spec §2.5, G5–G7): decode and prefill (both variants) vs the double
// reference, a hand-computed case, the exact early stop, and long contexts.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/cpu/stickbreak.h"
#include "kernels/cpu/variants.h"

namespace brickrt::kernels {
namespace {

using QueryFn = internal::StickBreakQueryFn;

std::vector<std::pair<const char*, QueryFn>> QueryVariants() {
  std::vector<std::pair<const char*, QueryFn>> v = {{"portable", internal::StickBreakQueryPortable}};
  if (internal::CpuHasAvx512()) v.push_back({"avx512", internal::StickBreakQueryAvx512});
  return v;
}

// One sequence's cache and a set of queries. Rows have padding (strides > d) to check the strides.
struct Problem {
  int64_t d = 0, S = 0, ldkv = 0, ldq = 0, ldo = 0;
  float scale = 1.0f;
  std::vector<float> k, v, q;          // k, v F32 [S, ldkv]; q F32 [n, ldq]
  std::vector<int64_t> positions;      // ascending, not contiguous
  int64_t n() const { return static_cast<int64_t>(positions.size()); }
};

// Runs the reference, the public decode and prefill (pools nullptr/1/2) and each query variant through
// the prefill driver, and checks them all against the reference within `tol`. Decode and prefill use the
// same per-query scan, so they must agree bit for bit.
void CheckAll(const Problem& p, float tol, const std::string& what) {
  const int64_t n = p.n();
  std::vector<float> ref(static_cast<size_t>(n * p.ldo), 0.0f);
  StickBreakRef(p.q.data(), p.ldq, n, p.positions.data(), p.k.data(), p.v.data(), p.ldkv, p.d, p.scale, ref.data(),
                p.ldo);
  std::vector<float> dec(ref.size(), 0.0f);
  for (int64_t r = 0; r < n; ++r) {
    StickBreakDecode(p.q.data() + r * p.ldq, p.k.data(), p.v.data(), p.ldkv, p.positions[r] + 1, p.d, p.scale,
                     dec.data() + r * p.ldo);
  }
  float max_err = 0;
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t i = 0; i < p.d; ++i) {
      const size_t at = static_cast<size_t>(r * p.ldo + i);
      max_err = std::max(max_err, std::fabs(dec[at] - ref[at]));
      ASSERT_NEAR(dec[at], ref[at], tol) << what << " decode r=" << r << " i=" << i;
    }
  }
  ThreadPool pool1(1), pool2(2);
  ThreadPool* pools[] = {nullptr, &pool1, &pool2};
  for (ThreadPool* pool : pools) {
    const int threads = pool ? pool->size() : 1;
    std::vector<float> ws(static_cast<size_t>(StickBreakWorkspaceFloats(p.S, threads)));
    std::vector<float> pre(ref.size(), 0.0f);
    StickBreakPrefill(p.q.data(), p.ldq, n, p.positions.data(), p.k.data(), p.v.data(), p.ldkv, p.d, p.scale,
                      pre.data(), p.ldo, ws.data(), pool);
    EXPECT_EQ(pre, dec) << what << " prefill threads=" << threads;
    for (const auto& [name, fn] : QueryVariants()) {
      std::vector<float> var(ref.size(), 0.0f);
      internal::StickBreakPrefillWith(fn, p.q.data(), p.ldq, n, p.positions.data(), p.k.data(), p.v.data(), p.ldkv,
                                      p.d, p.scale, var.data(), p.ldo, ws.data(), pool);
      for (size_t i = 0; i < var.size(); ++i) ASSERT_NEAR(var[i], ref[i], tol) << what << " " << name << " i=" << i;
    }
  }
  ::testing::Test::RecordProperty("max_err_" + what, std::to_string(max_err));
}

Problem RandomProblem(int64_t d, int64_t S, std::vector<int64_t> positions, uint32_t seed) {
  Problem p;
  p.d = d;
  p.S = S;
  p.ldkv = d + 3;
  p.ldq = d + 1;
  p.ldo = d + 2;
  p.scale = 1.0f / std::sqrt(static_cast<float>(d));
  p.positions = std::move(positions);
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  p.k.resize(static_cast<size_t>(S * p.ldkv));
  p.v.resize(p.k.size());
  p.q.resize(static_cast<size_t>(p.n() * p.ldq));
  for (auto& x : p.k) x = dist(rng);
  for (auto& x : p.v) x = dist(rng);
  for (auto& x : p.q) x = 2.0f * dist(rng);
  return p;
}

TEST(StickBreak, HandComputedTinyCase) {
  // d = 1, q = 1, scale = 1, keys k = [0, ln 3, −ln 3] → β = [1/2, 3/4, 1/4], values v = [1, 10, 100].
  //   position 0: a = [1/2]                                  → out = 0.5
  //   position 1: a1 = 3/4, a0 = 1/2·(1 − 3/4) = 1/8         → out = 0.125 + 7.5 = 7.625
  //   position 2: a2 = 1/4, a1 = 3/4·3/4 = 9/16,
  //               a0 = 1/2·(3/4)·(1/4) = 3/32                 → out = 0.09375 + 5.625 + 25 = 30.71875
  // (the remainder 1 − Σa is dropped, not renormalised).
  Problem p;
  p.d = 1;
  p.S = 3;
  p.ldkv = p.ldq = p.ldo = 1;
  const float ln3 = std::log(3.0f);
  p.k = {0.0f, ln3, -ln3};
  p.v = {1.0f, 10.0f, 100.0f};
  p.q = {1.0f, 1.0f, 1.0f};
  p.positions = {0, 1, 2};
  const float want[3] = {0.5f, 7.625f, 30.71875f};
  std::vector<float> ref(3), dec(3);
  StickBreakRef(p.q.data(), 1, 3, p.positions.data(), p.k.data(), p.v.data(), 1, 1, 1.0f, ref.data(), 1);
  for (int r = 0; r < 3; ++r) {
    StickBreakDecode(p.q.data(), p.k.data(), p.v.data(), 1, r + 1, 1, 1.0f, &dec[static_cast<size_t>(r)]);
    // ln 3 is rounded to F32 (relative 3e-8), so σ is off by ~1e-8: 1e-5 relative is ample.
    EXPECT_NEAR(ref[static_cast<size_t>(r)], want[r], 1e-5f * want[r]) << r;
    EXPECT_NEAR(dec[static_cast<size_t>(r)], want[r], 1e-5f * want[r]) << r;
  }
  CheckAll(p, 1e-5f * 100.0f, "tiny");
}

// Tolerance for random problems: each weight's log, log σ(l_j) + R_j, is an F32 sum of up to ~p
// terms of magnitude ≲ 10 (accumulation error ~1e-6 relative to |R| ≤ 104 plus the F32 logit error), so
// weights carry ≲ 1e-5 relative error; Σ a ≤ 1, hence |Δout| ≲ 1e-5·max|v| ≈ 5e-5 for N(0,1) values.
constexpr float kRandomTol = 5e-5f;  // measured max error: ~1e-6

TEST(StickBreak, RandomMatchesReference) {
  for (int64_t d : {1, 15, 17, 64}) {
    CheckAll(RandomProblem(d, 300, {0, 1, 5, 31, 32, 33, 64, 100, 250, 299}, static_cast<uint32_t>(d)), kRandomTol,
             "d" + std::to_string(d));
  }
}

TEST(StickBreak, LongContextWithoutEarlyStop) {
  // S = 2000 with logits around −5 (β ≈ 0.007): the stick is barely broken, R stays near −13, so every
  // key contributes and the scan runs over the whole context.
  const int64_t d = 64, S = 2000;
  Problem p = RandomProblem(d, S, {0, 999, 1000, 1500, 1998, 1999}, 21);
  p.scale = 1.0f;
  std::mt19937 rng(5);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  for (int64_t r = 0; r < p.n(); ++r) {
    for (int64_t i = 0; i < d; ++i) p.q[static_cast<size_t>(r * p.ldq + i)] = 1.0f / std::sqrt(static_cast<float>(d));
  }
  for (int64_t j = 0; j < S; ++j) {
    const float base = -5.0f + dist(rng);
    for (int64_t i = 0; i < d; ++i) {
      p.k[static_cast<size_t>(j * p.ldkv + i)] = (base + 0.3f * dist(rng)) / std::sqrt(static_cast<float>(d));
    }
  }
  CheckAll(p, kRandomTol, "long");
}

TEST(StickBreak, EarlyStopIsExactForSaturatedLogits) {
  // Every logit is 200: β = σ(200) = 1 in F32 and log σ(−200) = −200 < −104, so the scan stops after the
  // newest key and the output is exactly v[position]. The double reference agrees after rounding to F32
  // (the older weights are ≤ e^−200).
  const int64_t d = 16, S = 2000;
  Problem p = RandomProblem(d, S, {0, 1, 7, 1999}, 8);
  p.scale = 1.0f;
  std::fill(p.q.begin(), p.q.end(), 1.0f);
  std::fill(p.k.begin(), p.k.end(), 12.5f);  // <q, k> = 16 · 12.5 = 200
  std::vector<float> ref(static_cast<size_t>(p.n() * p.ldo));
  StickBreakRef(p.q.data(), p.ldq, p.n(), p.positions.data(), p.k.data(), p.v.data(), p.ldkv, d, 1.0f, ref.data(),
                p.ldo);
  for (int64_t r = 0; r < p.n(); ++r) {
    std::vector<float> out(static_cast<size_t>(d));
    StickBreakDecode(p.q.data() + r * p.ldq, p.k.data(), p.v.data(), p.ldkv, p.positions[r] + 1, d, 1.0f,
                     out.data());
    for (int64_t i = 0; i < d; ++i) {
      const float want = p.v[static_cast<size_t>(p.positions[r] * p.ldkv + i)];
      EXPECT_EQ(out[static_cast<size_t>(i)], want) << "r=" << r << " i=" << i;
      EXPECT_EQ(ref[static_cast<size_t>(r * p.ldo + i)], want) << "ref r=" << r << " i=" << i;
    }
  }
  CheckAll(p, 0.0f, "saturated");
}

TEST(StickBreak, EarlyStopNeverReadsOlderKeys) {
  // Keys k = 0 give l = 0 exactly: β = 1/2 and R drops by ln 2 per key, so R < −104 after 151 keys and
  // a_j = 2^−(p−j+1) underflows to 0 for all older keys. Poisoning every key and value older than 300
  // keys with NaN must leave the output equal to the clean reference: the scan never used them.
  const int64_t d = 32, S = 2000;
  Problem p = RandomProblem(d, S, {1500, 1999}, 13);
  std::fill(p.k.begin(), p.k.end(), 0.0f);
  std::vector<float> ref(static_cast<size_t>(p.n() * p.ldo));
  StickBreakRef(p.q.data(), p.ldq, p.n(), p.positions.data(), p.k.data(), p.v.data(), p.ldkv, d, p.scale, ref.data(),
                p.ldo);
  Problem poisoned = p;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (int64_t j = 0; j < p.positions[0] - 300; ++j) {
    for (int64_t i = 0; i < d; ++i) {
      poisoned.k[static_cast<size_t>(j * p.ldkv + i)] = nan;
      poisoned.v[static_cast<size_t>(j * p.ldkv + i)] = nan;
    }
  }
  for (const auto& [name, fn] : QueryVariants()) {
    std::vector<float> out(static_cast<size_t>(p.n() * p.ldo), 0.0f);
    std::vector<float> ws(static_cast<size_t>(StickBreakWorkspaceFloats(S, 1)));
    internal::StickBreakPrefillWith(fn, poisoned.q.data(), p.ldq, p.n(), p.positions.data(), poisoned.k.data(),
                                    poisoned.v.data(), p.ldkv, d, p.scale, out.data(), p.ldo, ws.data(), nullptr);
    for (int64_t r = 0; r < p.n(); ++r) {
      for (int64_t i = 0; i < d; ++i) {
        const size_t at = static_cast<size_t>(r * p.ldo + i);
        // Weights are powers of two summed in F32 vs double: a few ulps of the largest |v|.
        ASSERT_NEAR(out[at], ref[at], 1e-5f) << name << " r=" << r << " i=" << i;
      }
    }
  }
}

TEST(StickBreak, IncludesTheDiagonalAndDropsTheRemainder) {
  // One key, l = 0: the query's own key gets σ(0) = 1/2 and the other half of the stick is dropped,
  // so out = v/2 (not v: no renormalisation; not 0: the diagonal is allowed).
  const float q[2] = {1.0f, 1.0f}, k[2] = {0.0f, 0.0f}, v[2] = {4.0f, -2.0f};
  float out[2];
  StickBreakDecode(q, k, v, 2, 1, 2, 1.0f, out);
  EXPECT_EQ(out[0], 2.0f);
  EXPECT_EQ(out[1], -1.0f);
}

}  // namespace
}  // namespace brickrt::kernels
