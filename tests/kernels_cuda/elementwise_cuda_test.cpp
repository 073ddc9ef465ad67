// LayerNorm and both GELUs on the GPU against the CPU references, odd sizes, F32 and BF16 weights.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "core/dtype.h"
#include "kernels/cpu/gelu.h"
#include "kernels/cpu/layernorm.h"
#include "kernels/cuda/gelu.h"
#include "kernels/cuda/layernorm.h"
#include "tests/kernels_cuda/cuda_test_util.h"

namespace brickrt {
namespace {

using cuda_test::Alloc;
using cuda_test::Download;
using cuda_test::Upload;

TEST(CudaLayerNorm, MatchesReferenceOddSizesF32AndBf16Weights) {
  BRICK_REQUIRE_CUDA_DEVICE();
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (DType wt : {DType::kF32, DType::kBF16}) {
    for (int64_t D : {1, 31, 257, 1027}) {
      const int64_t M = 7;
      std::vector<float> x(static_cast<size_t>(M * D)), w(static_cast<size_t>(D)), b(static_cast<size_t>(D));
      for (auto& v : x) v = 3.0f + 2.0f * nd(rng);  // |mean| > std, as in residual streams
      for (auto& v : w) v = 1.0f + 0.1f * nd(rng);
      for (auto& v : b) v = 0.1f * nd(rng);
      // Weights stored in `wt`; the reference sees the same (widened) values.
      std::vector<uint16_t> w16(w.size()), b16(b.size());
      if (wt == DType::kBF16) {
        for (size_t i = 0; i < w.size(); ++i) {
          w16[i] = F32ToBf16(w[i]), b16[i] = F32ToBf16(b[i]);
          w[i] = Bf16ToF32(w16[i]), b[i] = Bf16ToF32(b16[i]);
        }
      }
      std::vector<float> ref(x.size());
      kernels::LayerNormRef(x.data(), M, D, w.data(), b.data(), 1e-5f, ref.data());
      auto dx = Upload(x);
      auto dw = wt == DType::kF32 ? Upload(w) : Upload(w16);
      auto db = wt == DType::kF32 ? Upload(b) : Upload(b16);
      auto dy = Alloc<float>(x.size());
      ASSERT_TRUE(cuda::LayerNormCuda(dx.as<float>(), M, D, dw.data(), db.data(), wt, 1e-5f, dy.as<float>(), nullptr)
                      .ok());
      const auto y = Download<float>(dy, x.size());
      // F32 statistics over ≤ 1027 elements (tree order) against double: a few ulp of the normalised
      // value, scaled by |w| ~ 1.
      for (size_t i = 0; i < y.size(); ++i) ASSERT_NEAR(y[i], ref[i], 2e-5f * (1 + std::fabs(ref[i]))) << "D=" << D;
      // In place (y aliases x).
      ASSERT_TRUE(cuda::LayerNormCuda(dx.as<float>(), M, D, dw.data(), db.data(), wt, 1e-5f, dx.as<float>(), nullptr)
                      .ok());
      EXPECT_EQ(Download<float>(dx, x.size()), y) << "in place must equal out of place, D=" << D;
    }
  }
}

void CheckGelu(bool erf_form) {
  std::vector<float> x;
  for (int i = -4099; i <= 4099; ++i) x.push_back(static_cast<float>(i) * 0.0025f);  // [-10.2, 10.2], odd count
  x.push_back(-30.0f), x.push_back(30.0f), x.push_back(0.0f);
  std::vector<float> ref = x;
  erf_form ? kernels::GeluErfRef(ref.data(), static_cast<int64_t>(ref.size()))
           : kernels::GeluTanhRef(ref.data(), static_cast<int64_t>(ref.size()));
  auto dx = Upload(x);
  const Status st = erf_form ? cuda::GeluErfCuda(dx.as<float>(), static_cast<int64_t>(x.size()), nullptr)
                             : cuda::GeluTanhCuda(dx.as<float>(), static_cast<int64_t>(x.size()), nullptr);
  ASSERT_TRUE(st.ok()) << st.ToString();
  const auto y = Download<float>(dx, x.size());
  // erff/expf are within 2 ulp on the device; the F32 formula vs the double reference adds a few ulp.
  for (size_t i = 0; i < y.size(); ++i) ASSERT_NEAR(y[i], ref[i], 2e-6f * (1 + std::fabs(ref[i]))) << "x=" << x[i];
}

TEST(CudaGelu, ErfMatchesReference) {
  BRICK_REQUIRE_CUDA_DEVICE();
  CheckGelu(true);
}

TEST(CudaGelu, TanhMatchesReference) {
  BRICK_REQUIRE_CUDA_DEVICE();
  CheckGelu(false);
}

}  // namespace
}  // namespace brickrt
