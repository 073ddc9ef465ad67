// Tests of PackedMatrix (pack/unpack bit-exact, the documented panel layout) and of MatmulPacked
// (portable, AVX-512, dispatched) against MatmulRef over all weight dtypes, both source layouts,
// GEMV (M <= 8) and GEMM shapes, panel tails, and pools of 1, 2 and no threads.
#include "kernels/cpu/packed_matrix.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
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

using PackedFn = void (*)(const float*, int64_t, const PackedMatrix&, float*, ThreadPool*);

struct Variant {
  const char* name;
  PackedFn fn;
};

std::vector<Variant> Variants() {
  std::vector<Variant> v = {{"dispatch", MatmulPacked}, {"portable", internal::MatmulPackedPortable}};
  if (internal::CpuHasAvx512()) v.push_back({"avx512", internal::MatmulPackedAvx512});
  return v;
}

// W [K, N] as `wt` bytes (row-major and transposed [N, K]) plus the same values as F32 [K, N].
struct Weights {
  std::vector<uint8_t> rows;        // wt [K, N]
  std::vector<uint8_t> transposed;  // wt [N, K]
  std::vector<float> f32;           // F32 [K, N], exact widening of `rows`
};

Weights MakeWeights(int64_t K, int64_t N, DType wt, std::mt19937& rng) {
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  const size_t es = DTypeSize(wt), n = static_cast<size_t>(K * N);
  Weights w;
  w.f32.resize(n);
  for (float& f : w.f32) f = dist(rng);
  w.rows.resize(n * es);
  ConvertFromF32(w.f32.data(), n, wt, w.rows.data());
  ConvertToF32(w.rows.data(), wt, n, w.f32.data());
  w.transposed.resize(n * es);
  for (int64_t k = 0; k < K; ++k) {
    for (int64_t c = 0; c < N; ++c) {
      std::memcpy(&w.transposed[static_cast<size_t>(c * K + k) * es], &w.rows[static_cast<size_t>(k * N + c) * es], es);
    }
  }
  return w;
}

// Runs every variant on every pool for one packed matrix and checks against the reference.
// Tolerance: the kernels sum K products in F32 (fused multiply-adds, one order per column), whose
// error is bounded by γ_K·Σ_k |x_mk||w_kn| with γ_K ≈ K·2^-24 (recursive summation), as in
// matmul_test.cpp; the reference (double) is exact to 0.5 ulp of |y|. A wrong or missing element, a
// column from the wrong panel slot or a rounded weight all exceed it.
void CheckPacked(const PackedMatrix& pm, const std::vector<float>& x, const Weights& w, int64_t M,
                 const std::string& what) {
  const int64_t K = pm.K(), N = pm.N();
  std::vector<float> ref(static_cast<size_t>(M * N));
  MatmulRef(x.data(), M, K, w.f32.data(), DType::kF32, N, ref.data());
  const double u = std::ldexp(1.0, -24);
  std::vector<double> tol(ref.size());
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t n = 0; n < N; ++n) {
      double abs_sum = 0;
      for (int64_t k = 0; k < K; ++k) abs_sum += std::fabs(x[m * K + k] * w.f32[k * N + n]);
      tol[m * N + n] = (K + 2) * u * abs_sum + u * std::fabs(ref[m * N + n]) + 1e-30;
    }
  }
  ThreadPool pool1(1), pool2(2);
  ThreadPool* pools[] = {nullptr, &pool1, &pool2};
  constexpr size_t kGuard = 80;  // floats past the end of y that the kernels must not touch
  for (const Variant& v : Variants()) {
    for (ThreadPool* pool : pools) {
      // NaN-filled output: the kernel must overwrite every element.
      std::vector<float> y(ref.size() + kGuard, std::numeric_limits<float>::quiet_NaN());
      for (size_t i = ref.size(); i < y.size(); ++i) y[i] = -7.0f;
      v.fn(x.data(), M, pm, y.data(), pool);
      const std::string where = what + " " + v.name + " threads=" + std::to_string(pool ? pool->size() : 0);
      int bad = 0;
      for (size_t i = 0; i < ref.size() && bad < 5; ++i) {
        const double err = std::fabs(static_cast<double>(y[i]) - ref[i]);
        if (!(err <= tol[i])) {  // also catches NaN
          ADD_FAILURE() << where << " at m=" << i / N << " n=" << i % N << ": got " << y[i] << " want " << ref[i]
                        << " (tol " << tol[i] << ")";
          ++bad;
        }
      }
      for (size_t i = ref.size(); i < y.size(); ++i) ASSERT_EQ(y[i], -7.0f) << where << ": wrote past y";
    }
  }
}

void CheckShape(int64_t M, int64_t K, int64_t N, DType wt, uint32_t seed) {
  std::mt19937 rng(seed);
  const Weights w = MakeWeights(K, N, wt, rng);
  std::vector<float> x(static_cast<size_t>(M * K));
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  for (float& v : x) v = dist(rng);
  const std::string what =
      std::string(DTypeName(wt)) + " M=" + std::to_string(M) + " K=" + std::to_string(K) + " N=" + std::to_string(N);
  CheckPacked(PackedMatrix::Pack(w.rows.data(), wt, K, N, false), x, w, M, what + " [K,N]");
  CheckPacked(PackedMatrix::Pack(w.transposed.data(), wt, K, N, true), x, w, M, what + " [N,K]");
}

class PackedMatmulTest : public ::testing::TestWithParam<DType> {};

TEST_P(PackedMatmulTest, GemvRowsMatchReference) {
  // M <= 8 (decode and small batches) over K and N tails: N around the 64-column panel and the
  // 16-column vector edges, K = 1 and odd; K·N up to 2048·1024 takes the multi-threaded split.
  uint32_t seed = 1;
  for (int64_t M : {1, 2, 3, 5, 8}) {
    for (int64_t K : {1, 7, 64, 1000, 1024}) {
      for (int64_t N : {1, 15, 16, 63, 64, 65, 200, 2048}) CheckShape(M, K, N, GetParam(), seed++);
    }
  }
}

TEST_P(PackedMatmulTest, GemmRowsMatchReference) {
  // M > 8 (prefill): row tiles of 6 with a tail, K blocks of 256 with a tail.
  uint32_t seed = 1000;
  for (int64_t M : {9, 17, 64}) {
    for (int64_t K : {1, 7, 64, 1000}) {
      for (int64_t N : {1, 15, 63, 65, 200}) CheckShape(M, K, N, GetParam(), seed++);
    }
  }
  CheckShape(17, 1024, 2048, GetParam(), seed++);
  CheckShape(100, 300, 130, GetParam(), seed++);  // two 96-row tasks
}

TEST_P(PackedMatmulTest, LargeVocabularyWidth) {
  // lm_head-like N = 50295 (786 panels, the last one 55 columns) with a small K.
  for (int64_t M : {1, 3, 9}) CheckShape(M, 16, 50295, GetParam(), 77 + static_cast<uint32_t>(M));
}

INSTANTIATE_TEST_SUITE_P(AllDtypes, PackedMatmulTest, ::testing::Values(DType::kF32, DType::kF16, DType::kBF16),
                         [](const auto& info) { return std::string(DTypeName(info.param)); });

// Random bit patterns (NaN payloads and denormals included) must come back bit for bit.
TEST(PackedMatrix, PackUnpackRoundTripIsBitExact) {
  std::mt19937 rng(3);
  for (DType wt : {DType::kF32, DType::kF16, DType::kBF16}) {
    for (const auto& kn : {std::pair<int64_t, int64_t>{1, 1}, {7, 65}, {33, 200}, {5, 50295}, {64, 64}}) {
      const int64_t K = kn.first, N = kn.second;
      const size_t es = DTypeSize(wt), n = static_cast<size_t>(K * N);
      std::vector<uint8_t> rows(n * es), transposed(n * es);
      for (uint8_t& b : rows) b = static_cast<uint8_t>(rng());
      for (int64_t k = 0; k < K; ++k) {
        for (int64_t c = 0; c < N; ++c) std::memcpy(&transposed[(c * K + k) * es], &rows[(k * N + c) * es], es);
      }
      for (bool t : {false, true}) {
        const PackedMatrix pm = PackedMatrix::Pack(t ? transposed.data() : rows.data(), wt, K, N, t);
        EXPECT_EQ(pm.K(), K);
        EXPECT_EQ(pm.N(), N);
        EXPECT_EQ(pm.dtype(), wt);
        EXPECT_EQ(pm.bytes(), static_cast<size_t>((N + 63) / 64 * 64 * K) * es);
        std::vector<uint8_t> back(n * es, 0xAB);
        pm.Unpack(back.data());
        EXPECT_EQ(back, rows) << DTypeName(wt) << " K=" << K << " N=" << N << " transposed=" << t;
      }
    }
  }
}

// The layout documented in packed_matrix.h: panel p, row k holds columns 64p.. in PanelSlot order
// (BF16: [c0, c16, c1, c17, ...] per 32 columns), the padding of the last panel is zero.
TEST(PackedMatrix, LayoutIsColumnPanels) {
  const int64_t K = 3, N = 70;
  std::vector<uint16_t> w(K * N);
  for (size_t i = 0; i < w.size(); ++i) w[i] = static_cast<uint16_t>(i + 1);
  const PackedMatrix bf = PackedMatrix::Pack(w.data(), DType::kBF16, K, N, false);
  const PackedMatrix f16 = PackedMatrix::Pack(w.data(), DType::kF16, K, N, false);
  const auto* pb = static_cast<const uint16_t*>(bf.data());
  const auto* pf = static_cast<const uint16_t*>(f16.data());
  EXPECT_EQ(reinterpret_cast<uintptr_t>(pb) % 64, 0u);
  // BF16 row 1 of panel 0: element 0 = column 0, element 1 = column 16, element 33 = column 48.
  EXPECT_EQ(pb[64 + 0], w[1 * N + 0]);
  EXPECT_EQ(pb[64 + 1], w[1 * N + 16]);
  EXPECT_EQ(pb[64 + 2], w[1 * N + 1]);
  EXPECT_EQ(pb[64 + 33], w[1 * N + 48]);
  // F16 in column order; panel 1 (columns 64-69) starts after K rows of panel 0.
  EXPECT_EQ(pf[64 + 5], w[1 * N + 5]);
  EXPECT_EQ(pf[K * 64 + 2 * 64 + 5], w[2 * N + 69]);
  for (int64_t k = 0; k < K; ++k) {
    for (int64_t j = 6; j < 64; ++j) EXPECT_EQ(pf[K * 64 + k * 64 + j], 0) << "padding k=" << k << " j=" << j;
  }
}

TEST(PackedMatrix, ZeroKGivesZerosAndEmptyIsANoOp) {
  const float x[3] = {1, 2, 3};
  const PackedMatrix pm = PackedMatrix::Pack(nullptr, DType::kBF16, 0, 5, false);
  for (const Variant& v : Variants()) {
    std::vector<float> y(3 * 5, std::numeric_limits<float>::quiet_NaN());
    v.fn(x, 3, pm, y.data(), nullptr);
    for (float f : y) EXPECT_EQ(f, 0.0f) << v.name;
    float untouched = 42.0f;
    v.fn(x, 1, PackedMatrix(), &untouched, nullptr);
    EXPECT_EQ(untouched, 42.0f) << v.name;
  }
}

TEST(PackedMatrix, Bf16WidenedExactly) {
  // BF16 weight 1 + 2^-7 (0x3F81) in every column slot (even and odd elements of the packed row),
  // x = 1 + 2^-20: every output must be the exact F32 product (no rounding of x, exact widening).
  const std::vector<uint16_t> w(64, 0x3F81);
  const float x[1] = {1.0f + std::ldexp(1.0f, -20)};
  const PackedMatrix pm = PackedMatrix::Pack(w.data(), DType::kBF16, 1, 64, false);
  for (const Variant& v : Variants()) {
    std::vector<float> y(64, 0.0f);
    v.fn(x, 1, pm, y.data(), nullptr);
    for (int j = 0; j < 64; ++j) EXPECT_EQ(y[j], x[0] * Bf16ToF32(0x3F81)) << v.name << " column " << j;
  }
}

TEST(PackedMatrix, KnownSmallProduct) {
  // [[1, 2]] · [[3, 4, 5], [6, 7, 8]] = [[15, 18, 21]], written out by hand; W given transposed.
  const float x[2] = {1, 2};
  const float wt[6] = {3, 6, 4, 7, 5, 8};  // [N=3, K=2]
  const PackedMatrix pm = PackedMatrix::Pack(wt, DType::kF32, 2, 3, true);
  for (const Variant& v : Variants()) {
    float y[3] = {};
    v.fn(x, 1, pm, y, nullptr);
    EXPECT_EQ(y[0], 15.0f) << v.name;
    EXPECT_EQ(y[1], 18.0f) << v.name;
    EXPECT_EQ(y[2], 21.0f) << v.name;
  }
}

TEST(PackedMatrix, CopiesShareStorage) {
  const float w[4] = {1, 2, 3, 4};
  const PackedMatrix a = PackedMatrix::Pack(w, DType::kF32, 2, 2, false);
  const PackedMatrix b = a;  // NOLINT(performance-unnecessary-copy-initialization): the copy is the test
  EXPECT_EQ(a.data(), b.data());
  EXPECT_EQ(b.bytes(), 2u * 64u * 4u);
}

}  // namespace
}  // namespace brickrt::kernels
