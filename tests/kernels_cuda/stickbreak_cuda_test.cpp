// Stick-breaking attention on the GPU (decode, prefill, gathered pairs) against the CPU double reference and the
// CPU decode scan: odd d and key counts (not multiples of 32), row strides, and a long cache where the
// early stop triggers (NaN keys older than the stop point would poison a scan that went past it).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "kernels/cpu/stickbreak.h"
#include "kernels/cuda/stickbreak.h"
#include "tests/kernels_cuda/cuda_test_util.h"

namespace brickrt {
namespace {

using cuda_test::Alloc;
using cuda_test::Download;
using cuda_test::Upload;

struct Cache {
  int64_t S = 0, d = 0, ld = 0;
  std::vector<float> kv;  // F32 [S, ld]; K = V as in MoLM
};

Cache RandomCache(int64_t S, int64_t d, int64_t pad, std::mt19937& rng) {
  std::normal_distribution<float> nd(0.0f, 1.0f);
  Cache c{S, d, d + pad, {}};
  c.kv.resize(static_cast<size_t>(S * c.ld));
  for (auto& v : c.kv) v = nd(rng);
  return c;
}

// Largest |difference| allowed: F32 logits (dot products in warp order, not the CPU's sequential one)
// and F32 log-space scan against double; weights ≤ 1, |v| ~ 1, outputs a convex-ish sum.
constexpr float kTol = 2e-4f;

TEST(CudaStickBreak, DecodeMatchesCpuOddSizes) {
  BRICK_REQUIRE_CUDA_DEVICE();
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (int64_t d : {1, 67, 1024}) {
    for (int64_t S : {1, 31, 33, 131}) {
      const Cache c = RandomCache(S, d, 3, rng);
      std::vector<float> q(static_cast<size_t>(d));
      for (auto& v : q) v = nd(rng);
      const float scale = 1.0f / std::sqrt(static_cast<float>(d));
      std::vector<float> ref(static_cast<size_t>(d)), cpu(ref.size());
      const int64_t pos = S - 1;
      kernels::StickBreakRef(q.data(), d, 1, &pos, c.kv.data(), c.kv.data(), c.ld, d, scale, ref.data(), d);
      kernels::StickBreakDecode(q.data(), c.kv.data(), c.kv.data(), c.ld, S, d, scale, cpu.data());
      auto dq = Upload(q);
      auto dkv = Upload(c.kv);
      auto dout = Alloc<float>(ref.size());
      ASSERT_TRUE(cuda::StickBreakDecodeCuda(dq.as<float>(), dkv.as<float>(), dkv.as<float>(), c.ld, S, d, scale,
                                             dout.as<float>(), nullptr)
                      .ok());
      const auto out = Download<float>(dout, ref.size());
      for (int64_t i = 0; i < d; ++i) {
        ASSERT_NEAR(out[i], ref[i], kTol) << "d=" << d << " S=" << S << " i=" << i;
        ASSERT_NEAR(out[i], cpu[i], kTol) << "d=" << d << " S=" << S << " i=" << i;
      }
    }
  }
}

TEST(CudaStickBreak, PrefillMatchesReferenceWithStrides) {
  BRICK_REQUIRE_CUDA_DEVICE();
  std::mt19937 rng(9);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const int64_t d = 67, S = 101, ldq = d + 5, ldo = d + 2;
  const Cache c = RandomCache(S, d, 1, rng);
  std::vector<int64_t> positions;  // ascending, not contiguous: a chunk after a cached prefix
  for (int64_t p = 40; p < S; p += 3) positions.push_back(p);
  positions.push_back(0);  // a query that sees only itself
  const int64_t n = static_cast<int64_t>(positions.size());
  std::vector<float> q(static_cast<size_t>(n * ldq));
  for (auto& v : q) v = 2.0f * nd(rng);
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  std::vector<float> ref(static_cast<size_t>(n * ldo), 0.0f);
  kernels::StickBreakRef(q.data(), ldq, n, positions.data(), c.kv.data(), c.kv.data(), c.ld, d, scale, ref.data(),
                         ldo);
  auto dq = Upload(q);
  auto dpos = Upload(positions);
  auto dkv = Upload(c.kv);
  auto dout = Upload(std::vector<float>(ref.size(), 0.0f));
  ASSERT_TRUE(cuda::StickBreakPrefillCuda(dq.as<float>(), ldq, n, dpos.as<int64_t>(), dkv.as<float>(), dkv.as<float>(),
                                          c.ld, d, scale, dout.as<float>(), ldo, nullptr)
                  .ok());
  const auto out = Download<float>(dout, ref.size());
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t i = 0; i < d; ++i) ASSERT_NEAR(out[r * ldo + i], ref[r * ldo + i], kTol) << "r=" << r << " i=" << i;
    for (int64_t i = d; i < ldo; ++i) ASSERT_EQ(out[r * ldo + i], 0.0f) << "padding written, r=" << r;
  }
}

TEST(CudaStickBreak, PairsOverSeveralSequencesMatchReferencePerQuery) {
  BRICK_REQUIRE_CUDA_DEVICE();
  // Three sequences of different lengths, each its own cache allocation; five token rows (a decode row
  // per sequence and two more prefill rows); eight (token, expert) pairs in no particular order.
  std::mt19937 rng(21);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const int64_t d = 67, pad = 3, ldq = d + 5, ldo = d + 2;
  std::vector<Cache> caches;
  std::vector<cuda::DeviceMemory> dcaches;
  for (int64_t S : {37, 5, 70}) {
    caches.push_back(RandomCache(S, d, pad, rng));
    dcaches.push_back(Upload(caches.back().kv));
  }
  const std::vector<int> seq_of_row = {0, 1, 2, 2, 0};
  const std::vector<int64_t> positions = {36, 4, 69, 20, 0};
  const std::vector<int32_t> rows = {2, 0, 4, 1, 2, 3, 0, 3};
  const int64_t P = static_cast<int64_t>(rows.size());
  std::vector<const float*> kv_of_row;
  for (int s : seq_of_row) kv_of_row.push_back(dcaches[static_cast<size_t>(s)].as<const float>());
  std::vector<float> q(static_cast<size_t>(P * ldq));
  for (auto& v : q) v = 2.0f * nd(rng);
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  std::vector<float> ref(static_cast<size_t>(P * ldo), 0.0f);
  for (int64_t p = 0; p < P; ++p) {
    const auto row = static_cast<size_t>(rows[static_cast<size_t>(p)]);
    const Cache& c = caches[static_cast<size_t>(seq_of_row[row])];
    kernels::StickBreakRef(q.data() + p * ldq, ldq, 1, &positions[row], c.kv.data(), c.kv.data(), c.ld, d, scale,
                           ref.data() + p * ldo, ldo);
  }
  auto dq = Upload(q);
  auto drows = Upload(rows);
  auto dpos = Upload(positions);
  auto dkv_of_row = Upload(kv_of_row);
  auto dout = Upload(std::vector<float>(ref.size(), 0.0f));
  const Status st =
      cuda::StickBreakPairsCuda(dq.as<float>(), ldq, P, drows.as<int32_t>(), dpos.as<int64_t>(),
                                dkv_of_row.as<const float* const>(), d + pad, d, scale, dout.as<float>(), ldo, nullptr);
  ASSERT_TRUE(st.ok()) << st.ToString();
  const auto out = Download<float>(dout, ref.size());
  for (int64_t p = 0; p < P; ++p) {
    for (int64_t i = 0; i < d; ++i) ASSERT_NEAR(out[p * ldo + i], ref[p * ldo + i], kTol) << "p=" << p << " i=" << i;
    for (int64_t i = d; i < ldo; ++i) ASSERT_EQ(out[p * ldo + i], 0.0f) << "padding written, p=" << p;
  }
}

TEST(CudaStickBreak, LongCacheStopsExactlyWhereCpuDoes) {
  BRICK_REQUIRE_CUDA_DEVICE();
  // Keys aligned with the query: every logit is large and positive, so each key breaks almost all of
  // the stick (log σ(−l) ≈ −l) and the remainder passes −104 after a few dozen keys. Keys older than
  // that are NaN: a scan that went past the stop would return NaN.
  std::mt19937 rng(13);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const int64_t d = 129, S = 4099;
  Cache c = RandomCache(S, d, 0, rng);
  std::vector<float> q(static_cast<size_t>(d));
  for (auto& v : q) v = nd(rng);
  for (int64_t j = 0; j < S; ++j)
    for (int64_t i = 0; i < d; ++i) c.kv[j * d + i] = 0.5f * q[i] + 0.1f * nd(rng);
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  // Where the CPU stops: the newest keys whose summed log σ(−l) stays >= −104.
  int64_t stop = S;
  float r = 0;
  for (int64_t j = S - 1; j >= 0; --j) {
    float dot = 0;
    for (int64_t i = 0; i < d; ++i) dot += q[i] * c.kv[j * d + i];
    const float l = scale * dot;
    r += std::min(-l, 0.0f) - std::log1p(std::exp(-std::fabs(l)));
    if (r < kernels::kStickBreakStopLog) {
      stop = j;
      break;
    }
  }
  ASSERT_GT(stop, 64) << "the test needs the stop to trigger well inside the cache";
  const int64_t poison_end = stop - 40;  // margin for F32 rounding differences of the logits
  for (int64_t j = 0; j < poison_end; ++j)
    for (int64_t i = 0; i < d; ++i) c.kv[j * d + i] = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> cpu(static_cast<size_t>(d));
  kernels::StickBreakDecode(q.data(), c.kv.data(), c.kv.data(), d, S, d, scale, cpu.data());
  auto dq = Upload(q);
  auto dkv = Upload(c.kv);
  auto dout = Alloc<float>(cpu.size());
  ASSERT_TRUE(cuda::StickBreakDecodeCuda(dq.as<float>(), dkv.as<float>(), dkv.as<float>(), d, S, d, scale,
                                         dout.as<float>(), nullptr)
                  .ok());
  const auto out = Download<float>(dout, cpu.size());
  for (int64_t i = 0; i < d; ++i) {
    ASSERT_FALSE(std::isnan(out[i])) << "the GPU scan went past the early stop, i=" << i;
    ASSERT_NEAR(out[i], cpu[i], kTol) << "i=" << i;
  }
  // Prefill of the last few positions over the same cache stops too.
  std::vector<int64_t> positions = {S - 3, S - 2, S - 1};
  std::vector<float> qs;
  for (int r2 = 0; r2 < 3; ++r2) qs.insert(qs.end(), q.begin(), q.end());
  auto dqs = Upload(qs);
  auto dpos = Upload(positions);
  auto douts = Alloc<float>(qs.size());
  ASSERT_TRUE(cuda::StickBreakPrefillCuda(dqs.as<float>(), d, 3, dpos.as<int64_t>(), dkv.as<float>(), dkv.as<float>(),
                                          d, d, scale, douts.as<float>(), d, nullptr)
                  .ok());
  for (float v : Download<float>(douts, qs.size())) ASSERT_FALSE(std::isnan(v)) << "prefill went past the stop";
}

}  // namespace
}  // namespace brickrt
