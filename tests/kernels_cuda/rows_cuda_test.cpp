// Row movement kernels (kernels/cuda/rows.h) against host loops: embedding rows widened exactly (every
// dtype, ids outside the table give NaN rows), rows written into per-sequence caches at their
// positions and nowhere else, the bias add, and the argument checks made before any launch.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "core/dtype.h"
#include "kernels/cuda/rows.h"
#include "tests/kernels_cuda/cuda_test_util.h"

namespace brickrt {
namespace {

using cuda_test::Alloc;
using cuda_test::Download;
using cuda_test::Upload;

TEST(CudaRows, EmbeddingRowsWidenExactlyAndMarkBadIds) {
  BRICK_REQUIRE_CUDA_DEVICE();
  const int64_t V = 37, D = 67;
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> values(static_cast<size_t>(V * D));
  for (float& v : values) v = nd(rng);
  const std::vector<int32_t> ids = {5, 0, 36, 5, -1, 37, 12};
  for (DType dt : {DType::kF32, DType::kF16, DType::kBF16}) {
    std::vector<uint8_t> table(values.size() * DTypeSize(dt));
    ConvertFromF32(values.data(), values.size(), dt, table.data());
    auto dtable = Upload(table);
    auto dids = Upload(ids);
    auto dout = Alloc<float>(ids.size() * D);
    ASSERT_TRUE(cuda::EmbeddingRowsCuda(dtable.data(), dt, V, D, dids.as<int32_t>(), static_cast<int64_t>(ids.size()),
                                        dout.as<float>(), nullptr)
                    .ok());
    const auto out = Download<float>(dout, ids.size() * D);
    for (size_t i = 0; i < ids.size(); ++i) {
      const float* row = out.data() + i * D;
      if (ids[i] < 0 || ids[i] >= V) {
        for (int64_t j = 0; j < D; ++j) ASSERT_TRUE(std::isnan(row[j])) << "id " << ids[i];
        continue;
      }
      std::vector<float> want(static_cast<size_t>(D));
      ConvertToF32(table.data() + static_cast<size_t>(ids[i] * D) * DTypeSize(dt), dt, want.size(), want.data());
      EXPECT_EQ(0, std::memcmp(row, want.data(), want.size() * sizeof(float))) << DTypeName(dt) << " row " << i;
    }
  }
}

TEST(CudaRows, WriteRowsLandAtTheirPositionsAndNowhereElse) {
  BRICK_REQUIRE_CUDA_DEVICE();
  const int64_t D = 67, ld = 70, cap = 9, n = 5;
  std::vector<float> x(static_cast<size_t>(n * D));
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i) + 0.5f;
  auto cache_a = Alloc<float>(static_cast<size_t>(cap * ld));
  auto cache_b = Alloc<float>(static_cast<size_t>(cap * ld));
  ASSERT_TRUE(cuda::ZeroDevice(cache_a.data(), cache_a.bytes(), nullptr).ok());
  ASSERT_TRUE(cuda::ZeroDevice(cache_b.data(), cache_b.bytes(), nullptr).ok());
  // Rows 0-2 to sequence a at 3, 4, 5; rows 3-4 to sequence b at 0 and 8 (its last row).
  const std::vector<float*> dst = {cache_a.as<float>(), cache_a.as<float>(), cache_a.as<float>(), cache_b.as<float>(),
                                   cache_b.as<float>()};
  const std::vector<int64_t> pos = {3, 4, 5, 0, 8};
  auto ddst = Upload(dst);
  auto dpos = Upload(pos);
  auto dx = Upload(x);
  ASSERT_TRUE(cuda::WriteRowsCuda(dx.as<float>(), n, D, ddst.as<float* const>(), dpos.as<int64_t>(), ld, nullptr).ok());
  const auto a = Download<float>(cache_a, static_cast<size_t>(cap * ld));
  const auto b = Download<float>(cache_b, static_cast<size_t>(cap * ld));
  std::vector<float> want_a(a.size(), 0.0f), want_b(b.size(), 0.0f);
  for (int64_t r = 0; r < n; ++r) {
    std::vector<float>& w = r < 3 ? want_a : want_b;
    for (int64_t j = 0; j < D; ++j) w[static_cast<size_t>(pos[r] * ld + j)] = x[static_cast<size_t>(r * D + j)];
  }
  EXPECT_EQ(a, want_a);
  EXPECT_EQ(b, want_b);
}

TEST(CudaRows, AddBiasAddsToEveryRow) {
  BRICK_REQUIRE_CUDA_DEVICE();
  const int64_t M = 13, N = 301;
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(M * N)), b(static_cast<size_t>(N));
  for (float& v : x) v = nd(rng);
  for (float& v : b) v = nd(rng);
  auto dx = Upload(x);
  auto db = Upload(b);
  ASSERT_TRUE(cuda::AddBiasCuda(dx.as<float>(), M, N, db.as<float>(), nullptr).ok());
  std::vector<float> want = x;
  for (int64_t m = 0; m < M; ++m)
    for (int64_t j = 0; j < N; ++j) want[static_cast<size_t>(m * N + j)] += b[static_cast<size_t>(j)];
  EXPECT_EQ(Download<float>(dx, x.size()), want);  // one F32 add per element: exact
}

TEST(CudaRows, RejectsBadSizesBeforeAnyLaunch) {
  // No device needed: the checks happen before any launch.
  EXPECT_EQ(cuda::WriteRowsCuda(nullptr, 1, 8, nullptr, nullptr, 7, nullptr).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(cuda::WriteRowsCuda(nullptr, -1, 8, nullptr, nullptr, 8, nullptr).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(cuda::EmbeddingRowsCuda(nullptr, DType::kF32, -1, 8, nullptr, 1, nullptr, nullptr).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(cuda::AddBiasCuda(nullptr, 2, -3, nullptr, nullptr).code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace brickrt
