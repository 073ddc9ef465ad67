// Tests of the optimized matmul variants (portable, AVX-512, dispatched) against MatmulRef over all
// weight dtypes, odd shapes, both paths (GEMV M <= 8, GEMM M > 8) and pools of 1, 2 and no threads.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/thread_pool.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/variants.h"

namespace brickrt::kernels {
namespace {

using MatmulFn = void (*)(const float*, int64_t, int64_t, const void*, DType, int64_t, float*, ThreadPool*);

struct Variant {
  const char* name;
  MatmulFn fn;
};

std::vector<Variant> Variants() {
  std::vector<Variant> v = {{"dispatch", Matmul}, {"portable", internal::MatmulPortable}};
  if (internal::CpuHasAvx512()) v.push_back({"avx512", internal::MatmulAvx512});
  return v;
}

// Weights stored as `wt` bytes plus the same values as F32 (exactly representable), for the bound.
struct Weights {
  std::vector<uint16_t> half;
  std::vector<float> f32;
  const void* data(DType wt) const { return wt == DType::kF32 ? static_cast<const void*>(f32.data()) : half.data(); }
};

Weights MakeWeights(int64_t K, int64_t N, DType wt, std::mt19937& rng) {
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  Weights w;
  w.f32.resize(static_cast<size_t>(K * N));
  if (wt != DType::kF32) w.half.resize(w.f32.size());
  for (size_t i = 0; i < w.f32.size(); ++i) {
    const float f = dist(rng);
    if (wt == DType::kBF16) {
      w.half[i] = F32ToBf16(f);
      w.f32[i] = Bf16ToF32(w.half[i]);
    } else if (wt == DType::kF16) {
      w.half[i] = F32ToF16(f);
      w.f32[i] = F16ToF32(w.half[i]);
    } else {
      w.f32[i] = f;
    }
  }
  return w;
}

// Checks y against the reference. Tolerance: the optimized kernels sum K products in F32 (fused
// multiply-adds, some order), whose error is bounded by γ_K·Σ_k |x_mk||w_kn| with γ_K ≈ K·2^-24
// (recursive summation); the reference itself is exact to 0.5 ulp of |y|. Anything beyond this bound
// is a real bug (a wrong element, a lost row of W, a rounded activation would all exceed it).
void ExpectClose(const std::vector<float>& x, const Weights& w, int64_t M, int64_t K, int64_t N,
                 const std::vector<float>& y, const std::vector<float>& ref, const std::string& what) {
  const double u = std::ldexp(1.0, -24);
  int bad = 0;
  for (int64_t m = 0; m < M && bad < 5; ++m) {
    for (int64_t n = 0; n < N && bad < 5; ++n) {
      double abs_sum = 0;
      for (int64_t k = 0; k < K; ++k) abs_sum += std::fabs(x[m * K + k] * w.f32[k * N + n]);
      const double r = ref[m * N + n];
      const double tol = (K + 2) * u * abs_sum + u * std::fabs(r) + 1e-30;
      const double err = std::fabs(y[m * N + n] - r);
      if (!(err <= tol)) {  // also catches NaN
        ADD_FAILURE() << what << " at m=" << m << " n=" << n << ": got " << y[m * N + n] << " want " << r
                      << " (tol " << tol << ")";
        ++bad;
      }
    }
  }
}

void CheckShape(int64_t M, int64_t K, int64_t N, DType wt, uint32_t seed) {
  std::mt19937 rng(seed);
  const Weights w = MakeWeights(K, N, wt, rng);
  std::vector<float> x(static_cast<size_t>(M * K));
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  for (float& v : x) v = dist(rng);
  std::vector<float> ref(static_cast<size_t>(M * N));
  MatmulRef(x.data(), M, K, w.data(wt), wt, N, ref.data());

  ThreadPool pool1(1), pool2(2);
  ThreadPool* pools[] = {nullptr, &pool1, &pool2};
  for (const Variant& v : Variants()) {
    for (ThreadPool* pool : pools) {
      // NaN-filled output: the kernel must overwrite every element.
      std::vector<float> y(static_cast<size_t>(M * N), std::numeric_limits<float>::quiet_NaN());
      v.fn(x.data(), M, K, w.data(wt), wt, N, y.data(), pool);
      const std::string what = std::string(v.name) + " " + DTypeName(wt) + " M=" + std::to_string(M) +
                               " K=" + std::to_string(K) + " N=" + std::to_string(N) +
                               " threads=" + std::to_string(pool ? pool->size() : 0);
      ExpectClose(x, w, M, K, N, y, ref, what);
    }
  }
}

class MatmulTest : public ::testing::TestWithParam<DType> {};

TEST_P(MatmulTest, OddShapesAllPathsMatchReference) {
  const int64_t rows[] = {1, 2, 3, 7, 8, 9, 33, 100};
  // (K, N): tails in both dimensions; the last three hold >= 128 KiB (kMinParallelBytes) of weights
  // even in BF16/F16 (33·2001·2 = 132,066 bytes) and so take the multi-threaded split.
  const int64_t kn[][2] = {{1, 1}, {15, 17}, {17, 100}, {100, 15}, {33, 2001}, {1000, 100}, {300, 257}};
  uint32_t seed = 1;
  for (int64_t M : rows) {
    for (const auto& s : kn) CheckShape(M, s[0], s[1], GetParam(), seed++);
  }
}

TEST_P(MatmulTest, LargeVocabularyWidth) {
  // lm_head-like N = 50295 (not a multiple of 16 or 64) with a small K.
  for (int64_t M : {1, 3, 9}) CheckShape(M, 16, 50295, GetParam(), 77 + static_cast<uint32_t>(M));
}

TEST_P(MatmulTest, DecodeShapes) {
  // The shapes of a MoLM expert projection in decode.
  CheckShape(1, 1024, 2048, GetParam(), 5);
  CheckShape(2, 2048, 1024, GetParam(), 6);
}

INSTANTIATE_TEST_SUITE_P(AllDtypes, MatmulTest, ::testing::Values(DType::kF32, DType::kF16, DType::kBF16),
                         [](const auto& info) { return std::string(DTypeName(info.param)); });

TEST(MatmulEdge, ZeroKGivesZeros) {
  const float x[3] = {1, 2, 3};
  const float w[1] = {0};
  for (const Variant& v : Variants()) {
    std::vector<float> y(3 * 5, std::numeric_limits<float>::quiet_NaN());
    v.fn(x, 3, 0, w, DType::kF32, 5, y.data(), nullptr);
    for (float f : y) EXPECT_EQ(f, 0.0f) << v.name;
  }
}

TEST(MatmulEdge, Bf16WidenedExactly) {
  // A single product with a BF16 weight whose low mantissa bits matter: 1 + 2^-7 (0x3F81) times
  // x = 1 + 2^-20 must equal the exact F32 product (no rounding of x, exact widening of w).
  const uint16_t w[1] = {0x3F81};
  const float x[1] = {1.0f + std::ldexp(1.0f, -20)};
  for (const Variant& v : Variants()) {
    float y = 0;
    v.fn(x, 1, 1, w, DType::kBF16, 1, &y, nullptr);
    EXPECT_EQ(y, x[0] * Bf16ToF32(0x3F81)) << v.name;
  }
}

TEST(MatmulEdge, KnownSmallProduct) {
  // [[1, 2]] · [[3, 4, 5], [6, 7, 8]] = [[15, 18, 21]], written out by hand.
  const float x[2] = {1, 2};
  const float w[6] = {3, 4, 5, 6, 7, 8};
  for (const Variant& v : Variants()) {
    float y[3] = {};
    v.fn(x, 1, 2, w, DType::kF32, 3, y, nullptr);
    EXPECT_EQ(y[0], 15.0f) << v.name;
    EXPECT_EQ(y[1], 18.0f) << v.name;
    EXPECT_EQ(y[2], 21.0f) << v.name;
  }
  float ref[3] = {};
  MatmulRef(x, 1, 2, w, DType::kF32, 3, ref);
  EXPECT_EQ(ref[0], 15.0f);
  EXPECT_EQ(ref[2], 21.0f);
}

}  // namespace
}  // namespace brickrt::kernels
