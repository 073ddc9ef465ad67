// Router softmax + top-k and greedy argmax on the GPU: ids exactly equal to the CPU's (ties to the
// lower index, NaN below −inf), gates within a few ulp.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "bricks/sampler.h"
#include "kernels/cpu/softmax_topk.h"
#include "kernels/cuda/sampling.h"
#include "kernels/cuda/softmax_topk.h"
#include "tests/kernels_cuda/cuda_test_util.h"

namespace brickrt {
namespace {

using cuda_test::Alloc;
using cuda_test::Download;
using cuda_test::Upload;

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// M rows of E logits: random, heavily tied (few distinct values), with ±inf, NaN, all −inf rows.
std::vector<float> Logits(int64_t M, int64_t E, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 2.0f);
  std::uniform_int_distribution<int> small(0, 3);
  std::vector<float> l(static_cast<size_t>(M * E));
  for (int64_t m = 0; m < M; ++m) {
    float* r = l.data() + m * E;
    for (int64_t e = 0; e < E; ++e) r[e] = (m % 3 == 0) ? static_cast<float>(small(rng)) : nd(rng);
    if (m % 11 == 1) r[E / 2] = kNaN;
    if (m % 13 == 2) r[0] = -kInf, r[E - 1] = -kInf;
    if (m % 17 == 3) r[1 % E] = kInf;
    if (m % 19 == 4) r[0] = kNaN, r[E - 1] = kNaN;
    if (m == M - 1)
      for (int64_t e = 0; e < E; ++e) r[e] = -kInf;
  }
  return l;
}

TEST(CudaSoftmaxTopK, IdsExactlyEqualCpuGatesClose) {
  BRICK_REQUIRE_CUDA_DEVICE();
  for (int64_t E : {1, 16, 37}) {
    for (int k : {1, 2, 4}) {
      if (k > E) continue;
      const int64_t M = 301;  // not a multiple of the 128-thread block
      const auto logits = Logits(M, E, static_cast<uint32_t>(E * 10 + k));
      std::vector<float> g_cpu(static_cast<size_t>(M * k));
      std::vector<int32_t> id_cpu(g_cpu.size()), id_ref(g_cpu.size());
      std::vector<float> g_ref(g_cpu.size());
      kernels::SoftmaxTopK(logits.data(), M, E, k, g_cpu.data(), id_cpu.data());
      kernels::SoftmaxTopKRef(logits.data(), M, E, k, g_ref.data(), id_ref.data());
      auto dl = Upload(logits);
      auto dg = Alloc<float>(g_cpu.size());
      auto di = Alloc<int32_t>(g_cpu.size());
      ASSERT_TRUE(cuda::SoftmaxTopKCuda(dl.as<float>(), M, E, k, dg.as<float>(), di.as<int32_t>(), nullptr).ok());
      const auto g = Download<float>(dg, g_cpu.size());
      const auto id = Download<int32_t>(di, g_cpu.size());
      EXPECT_EQ(id, id_cpu) << "E=" << E << " k=" << k;
      EXPECT_EQ(id, id_ref) << "E=" << E << " k=" << k;
      for (size_t i = 0; i < g.size(); ++i) {
        if (std::isnan(g_cpu[i])) {
          EXPECT_TRUE(std::isnan(g[i])) << "row " << i / k << ": CPU gate NaN, GPU " << g[i];
        } else {
          // expf on the device is within 2 ulp of glibc's; the sum over ≤ 37 terms adds a few more.
          EXPECT_NEAR(g[i], g_cpu[i], 1e-6f + 4e-6f * g_cpu[i]) << "row " << i / k;
        }
      }
    }
  }
}

TEST(CudaSoftmaxTopK, RejectsBadK) {
  // No device needed: the check happens before any launch.
  EXPECT_EQ(cuda::SoftmaxTopKCuda(nullptr, 1, 4, 5, nullptr, nullptr, nullptr).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(cuda::SoftmaxTopKCuda(nullptr, 1, 4, 0, nullptr, nullptr, nullptr).code(), StatusCode::kInvalidArgument);
}

TEST(CudaArgmax, EqualsGreedySampler) {
  BRICK_REQUIRE_CUDA_DEVICE();
  for (int64_t V : {1, 255, 257, 50295}) {
    const int64_t M = 23;
    auto logits = Logits(M, V, static_cast<uint32_t>(V));
    // A row whose maximum is repeated far apart, and one with a NaN at id 0 (the CPU keeps 0).
    if (V > 3) {
      logits[static_cast<size_t>(2 * V + 3)] = 1e6f, logits[static_cast<size_t>(2 * V + V - 1)] = 1e6f;
      logits[static_cast<size_t>(4 * V)] = kNaN;
    }
    auto dl = Upload(logits);
    auto di = Alloc<int32_t>(static_cast<size_t>(M));
    ASSERT_TRUE(cuda::ArgmaxCuda(dl.as<float>(), M, V, di.as<int32_t>(), nullptr).ok());
    const auto ids = Download<int32_t>(di, static_cast<size_t>(M));
    Sampler greedy(SamplingParams{0.0f, 0, 1.0f, 0}, V);
    for (int64_t m = 0; m < M; ++m) {
      EXPECT_EQ(ids[static_cast<size_t>(m)], greedy.Sample(logits.data() + m * V)) << "V=" << V << " row " << m;
    }
  }
}

}  // namespace
}  // namespace brickrt
