// GELU: known values, and the optimized versions (portable, AVX-512, dispatched) vs the references.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/gelu.h"
#include "kernels/cpu/variants.h"

namespace brickrt::kernels {
namespace {

using GeluFn = void (*)(float*, int64_t);
struct Variant {
  const char* name;
  GeluFn erf_fn;
  GeluFn tanh_fn;
};

std::vector<Variant> Variants() {
  std::vector<Variant> v = {{"dispatch", GeluErf, GeluTanh},
                            {"portable", internal::GeluErfPortable, internal::GeluTanhPortable}};
  if (internal::CpuHasAvx512()) v.push_back({"avx512", internal::GeluErfAvx512, internal::GeluTanhAvx512});
  return v;
}

TEST(Gelu, KnownValues) {
  // gelu_erf(1) = Φ(1) = 0.8413447460685429, gelu_tanh(1) = 0.5·(1 + tanh(√(2/π)·1.044715)).
  for (const Variant& v : Variants()) {
    float a[3] = {1.0f, 0.0f, -1.0f};
    v.erf_fn(a, 3);
    EXPECT_NEAR(a[0], 0.8413447460685429f, 2e-7f) << v.name;
    EXPECT_EQ(a[1], 0.0f) << v.name;
    EXPECT_NEAR(a[2], 0.8413447460685429f - 1.0f, 2e-7f) << v.name;  // gelu(−x) = gelu(x) − x
    float t[3] = {1.0f, 0.0f, -1.0f};
    v.tanh_fn(t, 3);
    EXPECT_NEAR(t[0], 0.8411919906082768f, 2e-7f) << v.name;
    EXPECT_EQ(t[1], 0.0f) << v.name;
    EXPECT_NEAR(t[2], 0.8411919906082768f - 1.0f, 2e-7f) << v.name;
  }
  float r[2] = {1.0f, 1.0f};
  GeluErfRef(r, 1);
  GeluTanhRef(r + 1, 1);
  EXPECT_NEAR(r[0], 0.8413447460685429f, 1e-7f);
  EXPECT_NEAR(r[1], 0.8411919906082768f, 1e-7f);
}

TEST(Gelu, MatchesReferenceOverRange) {
  // Every length 0..40 (vector tails) and a sweep over [−12, 12] including the saturating ends.
  std::vector<float> x;
  for (int i = -1200; i <= 1200; ++i) x.push_back(static_cast<float>(i) * 0.01f);
  std::mt19937 rng(9);
  std::normal_distribution<float> dist(0.0f, 3.0f);
  for (int i = 0; i < 1000; ++i) x.push_back(dist(rng));
  x.push_back(-100.0f);
  x.push_back(100.0f);
  std::vector<float> ref_erf = x, ref_tanh = x;
  GeluErfRef(ref_erf.data(), static_cast<int64_t>(x.size()));
  GeluTanhRef(ref_tanh.data(), static_cast<int64_t>(x.size()));
  for (const Variant& v : Variants()) {
    for (int64_t n = 0; n <= 40; ++n) {
      std::vector<float> a(x.begin(), x.begin() + n), ref(ref_erf.begin(), ref_erf.begin() + n);
      v.erf_fn(a.data(), n);
      for (int64_t i = 0; i < n; ++i) ASSERT_NEAR(a[i], ref[i], 1e-6f * (1.0f + std::fabs(x[i]))) << v.name;
    }
    std::vector<float> e = x, t = x;
    v.erf_fn(e.data(), static_cast<int64_t>(e.size()));
    v.tanh_fn(t.data(), static_cast<int64_t>(t.size()));
    for (size_t i = 0; i < x.size(); ++i) {
      // erf form: the A&S 7.1.26 erf is within 1.5e-7 absolute, times 0.5·|x|, plus F32 rounding.
      ASSERT_NEAR(e[i], ref_erf[i], 1e-6f * (1.0f + std::fabs(x[i]))) << v.name << " x=" << x[i];
      // tanh form: x·σ(2u) with a ~1-ulp exp: a few F32 ulps of |x|.
      ASSERT_NEAR(t[i], ref_tanh[i], 1e-6f * (1.0f + std::fabs(x[i]))) << v.name << " x=" << x[i];
    }
  }
}

}  // namespace
}  // namespace brickrt::kernels
