// cuBLAS matmul and the MoE dispatch (group, gather, per-expert GEMM, gated combine) against the CPU.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "bricks/dispatch.h"
#include "core/dtype.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cuda/expert_gemm.h"
#include "kernels/cuda/matmul.h"
#include "tests/kernels_cuda/cuda_test_util.h"

namespace brickrt {
namespace {

using cuda_test::Alloc;
using cuda_test::Download;
using cuda_test::Upload;

// Weights W [K, N] in `dt` (raw bytes), also returned widened in `wf` for the reference.
std::vector<uint8_t> MakeWeights(int64_t K, int64_t N, DType dt, std::mt19937& rng, std::vector<float>& wf) {
  std::normal_distribution<float> nd(0.0f, 0.5f);
  wf.resize(static_cast<size_t>(K * N));
  for (auto& v : wf) v = nd(rng);
  std::vector<uint8_t> raw(wf.size() * DTypeSize(dt));
  ConvertFromF32(wf.data(), wf.size(), dt, raw.data());
  ConvertToF32(raw.data(), dt, wf.size(), wf.data());  // the reference sees the stored values
  return raw;
}

// Tolerance per output: F32 weights, F32 accumulation in another order (no TF32): ~1e-6 of Σ|x·w|.
// F16/BF16: x is rounded to the weight dtype first (2^-11 / 2^-8 relative per product).
float Tol(DType dt, double abs_sum) {
  const double rel = dt == DType::kF32 ? 2e-6 : dt == DType::kF16 ? 1.0 / 2048 : 1.0 / 256;
  return static_cast<float>(rel * abs_sum + 1e-6);
}

TEST(CudaMatmul, MatchesReferenceBothLayoutsAllDtypes) {
  BRICK_REQUIRE_CUDA_DEVICE();
  auto handle = cuda::CublasHandle::Create();
  ASSERT_TRUE(handle.ok()) << handle.status().ToString();
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (DType dt : {DType::kF32, DType::kF16, DType::kBF16}) {
    for (bool transposed : {false, true}) {
      for (int64_t M : {1, 5, 67}) {
        const int64_t K = 131, N = 77;
        std::vector<float> wf;
        auto raw = MakeWeights(K, N, dt, rng, wf);  // W [K, N]
        std::vector<uint8_t> stored = raw;
        if (transposed) {  // store Wᵀ [N, K], the nn.Linear layout
          const size_t es = DTypeSize(dt);
          for (int64_t kk = 0; kk < K; ++kk)
            for (int64_t n = 0; n < N; ++n)
              std::copy_n(raw.data() + (kk * N + n) * es, es, stored.data() + (n * K + kk) * es);
        }
        std::vector<float> x(static_cast<size_t>(M * K));
        for (auto& v : x) v = nd(rng);
        std::vector<float> ref(static_cast<size_t>(M * N));
        kernels::MatmulRef(x.data(), M, K, wf.data(), DType::kF32, N, ref.data());
        auto dx = Upload(x);
        auto dw = Upload(stored);
        auto dy = Alloc<float>(ref.size());
        auto scratch = Alloc<uint8_t>(std::max<size_t>(1, cuda::MatmulScratchBytes(M, K, dt)));
        const Status st = cuda::MatmulCuda(*handle, dx.as<float>(), M, K, dw.data(), dt, N, transposed, dy.as<float>(),
                                           scratch.data(), nullptr);
        ASSERT_TRUE(st.ok()) << st.ToString();
        const auto y = Download<float>(dy, ref.size());
        // MatmulAddCuda: y0 + alpha·x·W on top of what y holds (the LoRA update).
        std::vector<float> y0(ref.size());
        for (auto& v : y0) v = nd(rng);
        auto dy0 = Upload(y0);
        constexpr float kAlpha = -0.75f;
        const Status add = cuda::MatmulAddCuda(*handle, dx.as<float>(), M, K, dw.data(), dt, N, transposed, kAlpha,
                                               dy0.as<float>(), scratch.data(), nullptr);
        ASSERT_TRUE(add.ok()) << add.ToString();
        const auto y_added = Download<float>(dy0, ref.size());
        for (int64_t m = 0; m < M; ++m) {
          for (int64_t n = 0; n < N; ++n) {
            double abs_sum = 0;
            for (int64_t kk = 0; kk < K; ++kk) abs_sum += std::fabs(x[m * K + kk] * wf[kk * N + n]);
            const size_t i = static_cast<size_t>(m * N + n);
            ASSERT_NEAR(y[i], ref[i], Tol(dt, abs_sum))
                << DTypeName(dt) << (transposed ? " [N,K]" : " [K,N]") << " M=" << M << " m=" << m << " n=" << n;
            ASSERT_NEAR(y_added[i], y0[i] + kAlpha * ref[i], Tol(dt, abs_sum) + 1e-6f * std::fabs(y0[i]))
                << "MatmulAddCuda " << DTypeName(dt) << " m=" << m << " n=" << n;
          }
        }
      }
    }
  }
}

// K = 0: nothing to multiply; y is zeroed (MatmulCuda), kept (MatmulAddCuda), other betas refused.
TEST(CudaMatmul, EmptyInnerDimension) {
  BRICK_REQUIRE_CUDA_DEVICE();
  auto handle = cuda::CublasHandle::Create();
  ASSERT_TRUE(handle.ok()) << handle.status().ToString();
  const std::vector<float> y0 = {1, 2, 3, 4, 5, 6};
  auto dy = Upload(y0);
  auto dx = Alloc<float>(1);
  auto dw = Alloc<float>(1);
  ASSERT_TRUE(cuda::MatmulAddCuda(*handle, dx.as<float>(), 2, 0, dw.data(), DType::kF32, 3, false, 2.0f, dy.as<float>(),
                                  nullptr, nullptr)
                  .ok());
  EXPECT_EQ(Download<float>(dy, 6), y0);
  EXPECT_EQ(cuda::GemmCuda(*handle, dx.as<float>(), 2, 0, dw.data(), DType::kF32, 3, false, 1.0f, 0.5f, dy.as<float>(),
                           nullptr, nullptr)
                .code(),
            StatusCode::kInvalidArgument);
  ASSERT_TRUE(cuda::MatmulCuda(*handle, dx.as<float>(), 2, 0, dw.data(), DType::kF32, 3, false, dy.as<float>(), nullptr,
                               nullptr)
                  .ok());
  EXPECT_EQ(Download<float>(dy, 6), std::vector<float>(6, 0.0f));
}

TEST(CudaExperts, GroupsGatherGemmCombineMatchCpu) {
  BRICK_REQUIRE_CUDA_DEVICE();
  auto handle = cuda::CublasHandle::Create();
  ASSERT_TRUE(handle.ok()) << handle.status().ToString();
  std::mt19937 rng(11);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (DType dt : {DType::kF32, DType::kBF16}) {
    const int64_t M = 45, E = 7, K = 33, N = 29;
    const int k = 2;
    // Distinct experts per row; expert 5 gets no rows (empty groups are normal).
    std::vector<int32_t> ids(static_cast<size_t>(M * k));
    std::vector<float> gates(ids.size());
    for (int64_t m = 0; m < M; ++m) {
      const int32_t a = static_cast<int32_t>(rng() % 5), b = static_cast<int32_t>((a + 1 + rng() % 4) % 5);
      ids[m * k] = m % 4 == 0 ? 6 : a, ids[m * k + 1] = b == ids[m * k] ? (b + 1) % 5 : b;
      gates[m * k] = 0.6f, gates[m * k + 1] = 0.3f + 0.001f * static_cast<float>(m);
    }
    ExpertGroups cpu;
    cpu.Build(ids.data(), gates.data(), M, k, E);

    std::vector<float> x(static_cast<size_t>(M * K)), h(static_cast<size_t>(M * N));
    for (auto& v : x) v = nd(rng);
    for (auto& v : h) v = nd(rng);
    std::vector<std::vector<float>> wf(E);
    std::vector<cuda::DeviceMemory> dws;
    std::vector<const void*> wptr;
    for (int64_t e = 0; e < E; ++e) {
      dws.push_back(Upload(MakeWeights(K, N, dt, rng, wf[e])));
      wptr.push_back(dws.back().data());
    }
    // CPU: gather, reference matmul per expert, h[row] += gate·y in expert order (bricks/blocks.cpp).
    std::vector<float> h_ref = h, y_e(static_cast<size_t>(M * N));
    for (int64_t e = 0; e < E; ++e) {
      const int32_t c = cpu.count(e);
      std::vector<float> xin(static_cast<size_t>(c * K));
      for (int32_t r = 0; r < c; ++r) std::copy_n(x.data() + cpu.rows[cpu.offsets[e] + r] * K, K, xin.data() + r * K);
      kernels::MatmulRef(xin.data(), c, K, wf[e].data(), DType::kF32, N, y_e.data());
      for (int32_t r = 0; r < c; ++r) {
        const int32_t p = cpu.offsets[e] + r;
        for (int64_t n = 0; n < N; ++n) h_ref[cpu.rows[p] * N + n] += cpu.gates[p] * y_e[r * N + n];
      }
    }

    const int64_t P = M * k;
    auto did = Upload(ids);
    auto dg = Upload(gates);
    auto doff = Alloc<int32_t>(static_cast<size_t>(E + 1));
    auto drows = Alloc<int32_t>(static_cast<size_t>(P));
    auto dpg = Alloc<float>(static_cast<size_t>(P));
    auto dpo = Alloc<int32_t>(static_cast<size_t>(P));
    ASSERT_TRUE(cuda::BuildExpertGroupsCuda(did.as<int32_t>(), dg.as<float>(), M, k, E, doff.as<int32_t>(),
                                            drows.as<int32_t>(), dpg.as<float>(), dpo.as<int32_t>(), nullptr)
                    .ok());
    const auto offsets = Download<int32_t>(doff, static_cast<size_t>(E + 1));
    EXPECT_EQ(offsets, cpu.offsets);
    EXPECT_EQ(Download<int32_t>(drows, static_cast<size_t>(P)), cpu.rows);
    EXPECT_EQ(Download<float>(dpg, static_cast<size_t>(P)), cpu.gates);

    auto dx = Upload(x);
    auto dh = Upload(h);
    auto dxs = Alloc<float>(static_cast<size_t>(P * K));
    auto dys = Alloc<float>(static_cast<size_t>(P * N));
    auto scratch = Alloc<uint8_t>(std::max<size_t>(1, cuda::MatmulScratchBytes(P, K, dt)));
    ASSERT_TRUE(cuda::GatherRowsCuda(dx.as<float>(), K, drows.as<int32_t>(), P, dxs.as<float>(), nullptr).ok());
    const auto xs = Download<float>(dxs, static_cast<size_t>(P * K));
    for (int64_t p = 0; p < P; ++p)
      for (int64_t i = 0; i < K; ++i) ASSERT_EQ(xs[p * K + i], x[cpu.rows[p] * K + i]) << "gather p=" << p;
    ASSERT_TRUE(cuda::ExpertMatmulCuda(*handle, dxs.as<float>(), offsets.data(), E, K, wptr.data(), dt, N, false,
                                       dys.as<float>(), scratch.data(), nullptr)
                    .ok());
    ASSERT_TRUE(
        cuda::CombineGatedCuda(dys.as<float>(), N, dpo.as<int32_t>(), dpg.as<float>(), M, k, dh.as<float>(), nullptr)
            .ok());
    const auto out = Download<float>(dh, h.size());
    for (int64_t m = 0; m < M; ++m) {
      for (int64_t n = 0; n < N; ++n) {
        double abs_sum = 0;  // bound over both slots, gates ≤ 1
        for (int s = 0; s < k; ++s)
          for (int64_t kk = 0; kk < K; ++kk) abs_sum += std::fabs(x[m * K + kk] * wf[ids[m * k + s]][kk * N + n]);
        ASSERT_NEAR(out[m * N + n], h_ref[m * N + n], Tol(dt, abs_sum) + 1e-6f * std::fabs(h_ref[m * N + n]))
            << DTypeName(dt) << " m=" << m << " n=" << n;
      }
    }
  }
}

}  // namespace
}  // namespace brickrt
