// Pinned host memory, asynchronous and device-to-device copies, and the DeviceArena bump allocator.
#include <gtest/gtest.h>

#include <cstdint>
#include <numeric>
#include <vector>

#include "kernels/cuda/memory.h"
#include "tests/kernels_cuda/cuda_test_util.h"

namespace brickrt {
namespace {

using cuda_test::Alloc;
using cuda_test::Download;
using cuda_test::Upload;

std::vector<float> Iota(size_t n, float start) {
  std::vector<float> v(n);
  std::iota(v.begin(), v.end(), start);
  return v;
}

TEST(CudaMemory, PinnedRoundTripOnAStreamWithAsyncCopyBack) {
  BRICK_REQUIRE_CUDA_DEVICE();
  const size_t n = 1000;  // not a multiple of anything in particular
  auto stream = cuda::Stream::Create();
  ASSERT_TRUE(stream.ok()) << stream.status().ToString();
  auto in = cuda::PinnedMemory::Allocate(n * sizeof(float));
  auto back = cuda::PinnedMemory::Allocate(n * sizeof(float));
  ASSERT_TRUE(in.ok() && back.ok()) << in.status().ToString() << back.status().ToString();
  ASSERT_NE(in->data(), nullptr);
  EXPECT_EQ(in->bytes(), n * sizeof(float));
  const auto want = Iota(n, -7.5f);
  std::copy(want.begin(), want.end(), in->as<float>());
  auto dev = Alloc<float>(n);
  ASSERT_TRUE(cuda::CopyToDevice(dev.data(), in->data(), n * sizeof(float), stream->get()).ok());
  ASSERT_TRUE(cuda::CopyToHostAsync(back->data(), dev.data(), n * sizeof(float), stream->get()).ok());
  ASSERT_TRUE(stream->Synchronize().ok());
  EXPECT_EQ(std::vector<float>(back->as<float>(), back->as<float>() + n), want);
}

TEST(CudaMemory, PinnedMemoryMovesAndEmptyAllocation) {
  BRICK_REQUIRE_CUDA_DEVICE();
  auto a = cuda::PinnedMemory::Allocate(64);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  void* p = a->data();
  cuda::PinnedMemory b = std::move(*a);
  EXPECT_EQ(b.data(), p);
  EXPECT_EQ(b.bytes(), 64u);
  EXPECT_EQ(a->data(), nullptr);
  EXPECT_EQ(a->bytes(), 0u);
  auto c = cuda::PinnedMemory::Allocate(128);
  ASSERT_TRUE(c.ok());
  b = std::move(*c);  // frees the 64 bytes
  EXPECT_EQ(b.bytes(), 128u);
  auto empty = cuda::PinnedMemory::Allocate(0);
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->data(), nullptr);
}

TEST(CudaMemory, CopyOnDeviceCopiesBetweenBuffersAndOffsets) {
  BRICK_REQUIRE_CUDA_DEVICE();
  const size_t n = 300;
  const auto src = Iota(n, 1.0f);
  auto dsrc = Upload(src);
  auto ddst = Upload(std::vector<float>(2 * n, 0.0f));
  // The middle 100 elements of src land at element 250 of dst; the rest of dst stays 0.
  ASSERT_TRUE(cuda::CopyOnDevice(ddst.as<float>() + 250, dsrc.as<float>() + 100, 100 * sizeof(float), nullptr).ok());
  const auto out = Download<float>(ddst, 2 * n);
  for (size_t i = 0; i < out.size(); ++i) {
    const float want = (i >= 250 && i < 350) ? src[i - 150] : 0.0f;
    ASSERT_EQ(out[i], want) << "i=" << i;
  }
  EXPECT_TRUE(cuda::CopyOnDevice(ddst.data(), dsrc.data(), 0, nullptr).ok());
}

TEST(CudaMemory, ArenaCarvesAlignedDisjointPiecesUntilExhausted) {
  BRICK_REQUIRE_CUDA_DEVICE();
  constexpr size_t kA = cuda::DeviceArena::kAlign;
  static_assert(cuda::DeviceArena::Round(1) == kA && cuda::DeviceArena::Round(kA) == kA &&
                cuda::DeviceArena::Round(kA + 1) == 2 * kA && cuda::DeviceArena::Round(0) == 0);
  auto mem = cuda::DeviceMemory::Allocate(4 * kA);
  ASSERT_TRUE(mem.ok()) << mem.status().ToString();
  char* base = mem->as<char>();
  cuda::DeviceArena arena(std::move(*mem));
  EXPECT_EQ(arena.capacity(), 4 * kA);
  EXPECT_EQ(arena.used(), 0u);
  EXPECT_EQ(arena.Carve(0), nullptr);
  float* a = arena.Carve<float>(3);               // 12 bytes -> one block
  int32_t* b = arena.Carve<int32_t>(kA / 4 + 1);  // a block and 4 bytes -> two blocks
  EXPECT_EQ(reinterpret_cast<char*>(a), base);
  EXPECT_EQ(reinterpret_cast<char*>(b), base + kA);
  EXPECT_EQ(arena.used(), 3 * kA);
  EXPECT_EQ(arena.Carve(kA + 1), nullptr) << "only one block is left";
  EXPECT_EQ(arena.used(), 3 * kA) << "a failed carve takes nothing";
  void* c = arena.Carve(kA);
  EXPECT_EQ(static_cast<char*>(c), base + 3 * kA);
  EXPECT_EQ(arena.Carve(1), nullptr);
  // The pieces are usable device memory and do not overlap.
  const std::vector<float> fa = {1.5f, 2.5f, 3.5f};
  std::vector<int32_t> ib(kA / 4 + 1);
  std::iota(ib.begin(), ib.end(), 100);
  const std::vector<uint8_t> uc(kA, 0xAB);
  ASSERT_TRUE(cuda::CopyToDevice(a, fa.data(), fa.size() * sizeof(float), nullptr).ok());
  ASSERT_TRUE(cuda::CopyToDevice(b, ib.data(), ib.size() * sizeof(int32_t), nullptr).ok());
  ASSERT_TRUE(cuda::CopyToDevice(c, uc.data(), uc.size(), nullptr).ok());
  std::vector<float> fa2(fa.size());
  std::vector<int32_t> ib2(ib.size());
  std::vector<uint8_t> uc2(uc.size());
  ASSERT_TRUE(cuda::CopyToHost(fa2.data(), a, fa2.size() * sizeof(float), nullptr).ok());
  ASSERT_TRUE(cuda::CopyToHost(ib2.data(), b, ib2.size() * sizeof(int32_t), nullptr).ok());
  ASSERT_TRUE(cuda::CopyToHost(uc2.data(), c, uc2.size(), nullptr).ok());
  EXPECT_EQ(fa2, fa);
  EXPECT_EQ(ib2, ib);
  EXPECT_EQ(uc2, uc);
}

TEST(CudaMemory, EmptyArenaCarvesNothing) {
  // No device needed: an arena over no memory is pure host arithmetic.
  cuda::DeviceArena arena;
  EXPECT_EQ(arena.capacity(), 0u);
  EXPECT_EQ(arena.Carve(1), nullptr);
  EXPECT_EQ(arena.Carve<float>(0), nullptr);
}

}  // namespace
}  // namespace brickrt
