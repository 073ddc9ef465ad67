// The grouped decode GEMV (ExpertGemvCuda) against a double reference per output, on the pair layout
// BuildExpertGroupsCuda writes for random expert ids.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "core/dtype.h"
#include "kernels/cuda/expert_gemm.h"
#include "kernels/cuda/expert_gemv.h"
#include "tests/kernels_cuda/cuda_test_util.h"

namespace brickrt {
namespace {

using cuda_test::Alloc;
using cuda_test::Download;
using cuda_test::Upload;

constexpr int64_t kE = 7;
constexpr int32_t kNullExpert = 5;   // weights nullptr: not on this GPU, its pairs' rows stay untouched
constexpr int32_t kEmptyExpert = 2;  // never routed to: zero pairs
constexpr float kSentinel = 777.0f;

struct Case {
  DType dt;
  int64_t M;  // token rows; P = M·k pairs
  int k;
  int64_t K, N;
  bool misaligned = false;  // weights one element past a 256-byte boundary: the kernel's element-load path
};

// Distinct expert ids per row, never kEmptyExpert; the last row of a call with P >= 3 includes the
// null expert. P = 1 goes to expert 3.
std::vector<int32_t> RandomIds(int64_t M, int k, std::mt19937& rng) {
  std::vector<int32_t> ids(static_cast<size_t>(M * k));
  if (M * k == 1) return {3};
  std::vector<int32_t> allowed;
  for (int32_t e = 0; e < kE; ++e)
    if (e != kEmptyExpert) allowed.push_back(e);
  for (int64_t m = 0; m < M; ++m) {
    std::shuffle(allowed.begin(), allowed.end(), rng);
    std::copy_n(allowed.begin(), k, ids.begin() + m * k);
  }
  int32_t* last = ids.data() + (M - 1) * k;
  if (std::find(last, last + k, kNullExpert) == last + k) last[k - 1] = kNullExpert;
  return ids;
}

void RunCase(const Case& c, std::mt19937& rng) {
  const int64_t M = c.M, K = c.K, N = c.N, P = M * c.k;
  const int64_t ldx = K + 3, ldy = N + 2;
  const size_t es = DTypeSize(c.dt);
  SCOPED_TRACE(::testing::Message() << DTypeName(c.dt) << " P=" << P << " K=" << K << " N=" << N
                                    << (c.misaligned ? " misaligned" : ""));
  std::normal_distribution<float> nd(0.0f, 1.0f);

  // The real pair layout: ids → BuildExpertGroupsCuda → device offsets.
  const auto ids = RandomIds(M, c.k, rng);
  std::vector<float> gates(ids.size());
  for (auto& g : gates) g = 0.5f + 0.1f * nd(rng);
  auto did = Upload(ids);
  auto dg = Upload(gates);
  auto doff = Alloc<int32_t>(static_cast<size_t>(kE + 1));
  auto drows = Alloc<int32_t>(static_cast<size_t>(P));
  auto dpg = Alloc<float>(static_cast<size_t>(P));
  auto dpo = Alloc<int32_t>(static_cast<size_t>(P));
  ASSERT_TRUE(cuda::BuildExpertGroupsCuda(did.as<int32_t>(), dg.as<float>(), M, c.k, kE, doff.as<int32_t>(),
                                          drows.as<int32_t>(), dpg.as<float>(), dpo.as<int32_t>(), nullptr)
                  .ok());
  const auto offsets = Download<int32_t>(doff, static_cast<size_t>(kE + 1));
  ASSERT_EQ(offsets[kEmptyExpert], offsets[kEmptyExpert + 1]);

  // Weights [K, N] per expert in c.dt; the reference sees the stored values widened.
  std::vector<std::vector<float>> wf(kE);
  std::vector<cuda::DeviceMemory> dws;
  std::vector<const void*> wptr(kE, nullptr);
  for (int64_t e = 0; e < kE; ++e) {
    if (e == kNullExpert) continue;
    wf[e].resize(static_cast<size_t>(K * N));
    for (auto& v : wf[e]) v = 0.5f * nd(rng);
    std::vector<uint8_t> raw((wf[e].size() + 1) * es, 0);
    uint8_t* at = raw.data() + (c.misaligned ? es : 0);
    ConvertFromF32(wf[e].data(), wf[e].size(), c.dt, at);
    ConvertToF32(at, c.dt, wf[e].size(), wf[e].data());
    dws.push_back(Upload(raw));
    wptr[e] = static_cast<const uint8_t*>(dws.back().data()) + (c.misaligned ? es : 0);
  }
  auto dwptr = Upload(wptr);  // the device array of device pointers

  // x [P, ldx] with NaN padding (never read); y [P, ldy] prefilled with the sentinel.
  std::vector<float> x(static_cast<size_t>(P * ldx), std::numeric_limits<float>::quiet_NaN());
  for (int64_t p = 0; p < P; ++p)
    for (int64_t i = 0; i < K; ++i) x[p * ldx + i] = nd(rng);
  const std::vector<float> y0(static_cast<size_t>(P * ldy), kSentinel);
  auto dx = Upload(x);
  auto dy = Upload(y0);
  auto scratch = Alloc<uint8_t>(std::max<size_t>(1, cuda::ExpertGemvScratchBytes(P, N)));
  const auto* weights = static_cast<const void* const*>(dwptr.data());
  Status st = cuda::ExpertGemvCuda(dx.as<float>(), ldx, P, K, doff.as<int32_t>(), kE, weights, c.dt, N, dy.as<float>(),
                                   ldy, scratch.data(), nullptr);
  ASSERT_TRUE(st.ok()) << st.ToString();
  const auto y = Download<float>(dy, y0.size());

  // Deterministic: a second call gives the same bits.
  auto dy2 = Upload(y0);
  st = cuda::ExpertGemvCuda(dx.as<float>(), ldx, P, K, doff.as<int32_t>(), kE, weights, c.dt, N, dy2.as<float>(), ldy,
                            scratch.data(), nullptr);
  ASSERT_TRUE(st.ok()) << st.ToString();
  const auto y2 = Download<float>(dy2, y0.size());
  ASSERT_EQ(0, std::memcmp(y.data(), y2.data(), y.size() * sizeof(float))) << "two calls differ";

  // Tolerance: F32 accumulation in another order (split-K partial sums, then their sum): 2e-6·Σ|x·w|.
  // No rounding of x to the weight dtype (unlike MatmulCuda), so the same bound holds for F16/BF16.
  std::vector<double> ref(static_cast<size_t>(N)), abs_sum(static_cast<size_t>(N));
  int computed = 0, untouched = 0;
  for (int64_t p = 0; p < P; ++p) {
    const int64_t e = std::upper_bound(offsets.begin(), offsets.end(), static_cast<int32_t>(p)) - offsets.begin() - 1;
    ASSERT_TRUE(e >= 0 && e < kE) << "p=" << p;
    const float* yr = y.data() + p * ldy;
    for (int64_t n = N; n < ldy; ++n) ASSERT_EQ(yr[n], kSentinel) << "padding written: p=" << p << " n=" << n;
    if (e == kNullExpert) {
      ++untouched;
      for (int64_t n = 0; n < N; ++n) ASSERT_EQ(yr[n], kSentinel) << "null expert's row written: p=" << p;
      continue;
    }
    ++computed;
    std::fill(ref.begin(), ref.end(), 0.0);
    std::fill(abs_sum.begin(), abs_sum.end(), 0.0);
    for (int64_t kk = 0; kk < K; ++kk) {
      const double a = x[p * ldx + kk];
      const float* wr = wf[e].data() + kk * N;
      for (int64_t n = 0; n < N; ++n) {
        const double t = a * wr[n];
        ref[n] += t;
        abs_sum[n] += std::fabs(t);
      }
    }
    for (int64_t n = 0; n < N; ++n)
      ASSERT_NEAR(yr[n], ref[n], 2e-6 * abs_sum[n] + 1e-6) << "p=" << p << " expert " << e << " n=" << n;
  }
  EXPECT_GT(computed, 0);
  if (P >= 3) {
    EXPECT_GT(untouched, 0);
  }
}

TEST(CudaExpertGemv, MatchesDoubleReferenceOnRealGroupLayouts) {
  BRICK_REQUIRE_CUDA_DEVICE();
  std::mt19937 rng(21);
  for (DType dt : {DType::kF32, DType::kF16, DType::kBF16}) {
    RunCase({dt, 1, 1, 131, 77}, rng);        // P = 1
    RunCase({dt, 3, 1, 131, 77}, rng);        // P = 3, one pair per row
    RunCase({dt, 1, 3, 131, 77}, rng);        // P = 3, three experts of one row
    RunCase({dt, 16, 4, 131, 77}, rng);       // P = 64
    RunCase({dt, 16, 4, 7, 72}, rng);         // K < 32: one split, y written directly
    RunCase({dt, 3, 1, 131, 72}, rng);        // N·size a multiple of 16: the 16-byte load path
    RunCase({dt, 3, 1, 131, 72, true}, rng);  // the same, unaligned weights: element loads
  }
}

TEST(CudaExpertGemv, MolmShapes) {
  BRICK_REQUIRE_CUDA_DEVICE();
  std::mt19937 rng(22);
  RunCase({DType::kBF16, 2, 4, 1024, 4096}, rng);  // MoLM's W1 at P = 8
  RunCase({DType::kBF16, 1, 1, 4096, 1024}, rng);  // W2 at P = 1: 256 splits of 16 rows
  // Few splits with long K ranges (> 256 rows each: x staged in several shared-memory tiles).
  RunCase({DType::kF32, 16, 4, 1600, 3072}, rng);
}

TEST(CudaExpertGemv, ZeroKZeroesComputedRows) {
  BRICK_REQUIRE_CUDA_DEVICE();
  std::mt19937 rng(23);
  RunCase({DType::kBF16, 3, 2, 0, 40}, rng);
}

TEST(CudaExpertGemv, RejectsBadArgumentsBeforeAnyLaunch) {
  const auto bf16 = DType::kBF16;
  float dummy = 0;  // never dereferenced: every call below fails (or returns) before touching memory
  void* s = &dummy;
  auto code = [](const Status& st) { return st.code(); };
  constexpr int64_t kBig = int64_t{1} << 31;
  EXPECT_EQ(code(cuda::ExpertGemvCuda(nullptr, 8, 1, 8, nullptr, 0, nullptr, bf16, 8, nullptr, 8, s, nullptr)),
            StatusCode::kInvalidArgument);  // E < 1
  EXPECT_EQ(code(cuda::ExpertGemvCuda(nullptr, 7, 1, 8, nullptr, 4, nullptr, bf16, 8, nullptr, 8, s, nullptr)),
            StatusCode::kInvalidArgument);  // ldx < K
  EXPECT_EQ(code(cuda::ExpertGemvCuda(nullptr, 8, 1, 8, nullptr, 4, nullptr, bf16, 8, nullptr, 7, s, nullptr)),
            StatusCode::kInvalidArgument);  // ldy < N
  EXPECT_EQ(code(cuda::ExpertGemvCuda(nullptr, kBig, 1, kBig, nullptr, 4, nullptr, bf16, 8, nullptr, 8, s, nullptr)),
            StatusCode::kInvalidArgument);  // K >= 2^31
  EXPECT_EQ(code(cuda::ExpertGemvCuda(nullptr, 8, kBig, 8, nullptr, 4, nullptr, bf16, 8, nullptr, 8, s, nullptr)),
            StatusCode::kInvalidArgument);  // P >= 2^31
  EXPECT_EQ(code(cuda::ExpertGemvCuda(nullptr, 8, 1, 8, nullptr, 4, nullptr, bf16, kBig, nullptr, kBig, s, nullptr)),
            StatusCode::kInvalidArgument);  // N >= 2^31
  EXPECT_EQ(code(cuda::ExpertGemvCuda(nullptr, 8, -1, 8, nullptr, 4, nullptr, bf16, 8, nullptr, 8, s, nullptr)),
            StatusCode::kInvalidArgument);  // negative P
  ASSERT_GT(cuda::ExpertGemvScratchBytes(1, 8), 0u);
  EXPECT_EQ(code(cuda::ExpertGemvCuda(nullptr, 8, 1, 8, nullptr, 4, nullptr, bf16, 8, nullptr, 8, nullptr, nullptr)),
            StatusCode::kInvalidArgument);  // missing scratch
  // Empty P or N: OK without a launch (and without scratch).
  EXPECT_TRUE(cuda::ExpertGemvCuda(nullptr, 8, 0, 8, nullptr, 4, nullptr, bf16, 8, nullptr, 8, nullptr, nullptr).ok());
  EXPECT_TRUE(cuda::ExpertGemvCuda(nullptr, 8, 3, 8, nullptr, 4, nullptr, bf16, 0, nullptr, 0, nullptr, nullptr).ok());
  // Scratch: none at prefill-sized P·N (no split), and the bound covers every K.
  EXPECT_EQ(cuda::ExpertGemvScratchBytes(4096, 4096), 0u);
  EXPECT_EQ(cuda::ExpertGemvScratchBytes(0, 4096), 0u);
}

}  // namespace
}  // namespace brickrt
