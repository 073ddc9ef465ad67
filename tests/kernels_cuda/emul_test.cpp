// The host emulation's own checks (linked only into brick_kernels_cuda_emul_tests): what would crash or
// corrupt memory on a GPU is refused with InvalidArgument, and device memory faults on the host.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <vector>

#include "kernels/cuda/device.h"
#include "kernels/cuda/expert_gemm.h"
#include "kernels/cuda/gelu.h"
#include "kernels/cuda/matmul.h"
#include "kernels/cuda/memory.h"
#include "kernels/cuda/stickbreak.h"
#include "tests/kernels_cuda/cuda_test_util.h"

namespace brickrt {
namespace {

using cuda_test::Alloc;
using cuda_test::Download;
using cuda_test::Upload;

void ExpectInvalid(const Status& st, const std::string& fragment) {
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.ToString();
  EXPECT_NE(st.message().find(fragment), std::string::npos) << st.ToString();
}

constexpr const char* kHostPointer = "is not device memory";

TEST(CudaEmulation, OneDeviceThatIsTheHost) {
  const auto devices = cuda::ListDevices();
  ASSERT_EQ(devices.size(), 1u);
  EXPECT_EQ(devices[0].index, 0);
  EXPECT_EQ(devices[0].name, "host emulation of the CUDA kernels");
  EXPECT_GT(devices[0].total_bytes, 0u);
  EXPECT_TRUE(cuda::UseDevice(0).ok());
  EXPECT_EQ(cuda::UseDevice(1).code(), StatusCode::kUnavailable);
}

TEST(CudaEmulation, HostPointerPassedToAKernelIsInvalidArgument) {
  std::vector<float> host(16, 1.0f);
  ExpectInvalid(cuda::GeluErfCuda(host.data(), 16, nullptr), kHostPointer);
  auto handle = cuda::CublasHandle::Create();
  ASSERT_TRUE(handle.ok());
  auto w = Upload(std::vector<float>(16, 0.5f));
  auto y = Alloc<float>(16);
  ExpectInvalid(
      cuda::MatmulCuda(*handle, host.data(), 4, 4, w.data(), DType::kF32, 4, false, y.as<float>(), nullptr, nullptr),
      kHostPointer);
  EXPECT_EQ(host, std::vector<float>(16, 1.0f)) << "nothing was written";
}

TEST(CudaEmulation, CopiesCheckTheDirection) {
  std::vector<float> host(8, 2.0f);
  auto a = Upload(host);
  auto b = Alloc<float>(8);
  const size_t bytes = 8 * sizeof(float);
  ExpectInvalid(cuda::CopyToDevice(host.data(), a.data(), bytes, nullptr), "CopyToDevice: src");
  ExpectInvalid(cuda::CopyToDevice(b.data(), a.data(), bytes, nullptr), "device memory where host memory is needed");
  ExpectInvalid(cuda::CopyToHost(b.data(), a.data(), bytes, nullptr), "CopyToHost: dst");
  ExpectInvalid(cuda::CopyToHostAsync(host.data(), host.data(), bytes, nullptr), kHostPointer);
  ExpectInvalid(cuda::CopyOnDevice(host.data(), a.data(), bytes, nullptr), kHostPointer);
  ExpectInvalid(cuda::CopyOnDevice(b.data(), host.data(), bytes, nullptr), kHostPointer);
  ExpectInvalid(cuda::CopyOnDevice(a.as<float>() + 1, a.data(), 4 * sizeof(float), nullptr), "overlap");
  EXPECT_TRUE(cuda::CopyOnDevice(b.data(), a.data(), bytes, nullptr).ok());
}

TEST(CudaEmulation, RangesPastTheEndAndFreedBuffersAreRefused) {
  auto a = Alloc<float>(10);
  ExpectInvalid(cuda::GeluTanhCuda(a.as<float>(), 11, nullptr), "run past the end");
  ExpectInvalid(cuda::GeluTanhCuda(a.as<float>() + 5, 6, nullptr), "run past the end");
  EXPECT_TRUE(cuda::ZeroDevice(a.as<float>() + 5, 5 * sizeof(float), nullptr).ok());
  float* stale = nullptr;
  {
    auto gone = Alloc<float>(10);
    stale = gone.as<float>();
  }
  ExpectInvalid(cuda::GeluTanhCuda(stale, 10, nullptr), kHostPointer);
}

TEST(CudaEmulation, IndicesReadFromDeviceMemoryAreChecked) {
  // A row index past x in GatherRows, and a host pointer inside StickBreakPairs' device array of caches.
  auto x = Upload(std::vector<float>(3 * 4, 1.0f));  // F32 [3, 4]
  auto rows = Upload(std::vector<int32_t>{0, 2, 3});
  auto out = Alloc<float>(3 * 4);
  ExpectInvalid(cuda::GatherRowsCuda(x.as<float>(), 4, rows.as<int32_t>(), 3, out.as<float>(), nullptr), "row 3 of x");
  // Before the buffer: never inside a neighbouring allocation (each has a guard page around it).
  auto before = Alloc<float>(1024);  // likely mapped just below x
  auto minus_one = Upload(std::vector<int32_t>{-1});
  ExpectInvalid(cuda::GatherRowsCuda(x.as<float>(), 4, minus_one.as<int32_t>(), 1, out.as<float>(), nullptr),
                kHostPointer);
  std::vector<float> host_kv(4 * 4, 0.0f);
  auto kv_of_row = Upload(std::vector<const float*>{x.as<const float>(), host_kv.data()});
  auto positions = Upload(std::vector<int64_t>{2, 3});
  auto q = Upload(std::vector<float>(2 * 4, 0.1f));
  auto pair_rows = Upload(std::vector<int32_t>{0, 1});
  const Status st =
      cuda::StickBreakPairsCuda(q.as<float>(), 4, 2, pair_rows.as<int32_t>(), positions.as<int64_t>(),
                                kv_of_row.as<const float* const>(), 4, 4, 0.5f, out.as<float>(), 4, nullptr);
  ExpectInvalid(st, "pair 1 (row 1)");
  ExpectInvalid(st, kHostPointer);
}

TEST(CudaEmulation, MatmulScratchHandleAndStreamAreChecked) {
  auto handle = cuda::CublasHandle::Create();
  ASSERT_TRUE(handle.ok());
  const int64_t M = 3, K = 5, N = 2;
  auto x = Upload(std::vector<float>(M * K, 1.0f));
  auto w = Upload(std::vector<uint16_t>(K * N, F32ToBf16(0.5f)));
  auto y = Alloc<float>(M * N);
  auto small = Alloc<uint8_t>(cuda::MatmulScratchBytes(M, K, DType::kBF16) - 1);
  auto run = [&](const cuda::CublasHandle& h, void* scratch, cuda::CudaStream s) {
    return cuda::MatmulCuda(h, x.as<float>(), M, K, w.data(), DType::kBF16, N, false, y.as<float>(), scratch, s);
  };
  ExpectInvalid(run(*handle, nullptr, nullptr), "need MatmulScratchBytes");
  ExpectInvalid(run(*handle, small.data(), nullptr), "run past the end");
  EXPECT_EQ(run(cuda::CublasHandle(), small.data(), nullptr).code(), StatusCode::kUnavailable);
  void* dead_stream = nullptr;
  {
    auto s = cuda::Stream::Create();
    ASSERT_TRUE(s.ok());
    dead_stream = s->get();
    ASSERT_NE(dead_stream, nullptr);
  }
  auto scratch = Alloc<uint8_t>(cuda::MatmulScratchBytes(M, K, DType::kBF16));
  ExpectInvalid(run(*handle, scratch.data(), dead_stream), "not a live Stream");
  ASSERT_TRUE(run(*handle, scratch.data(), nullptr).ok());
  for (float v : Download<float>(y, M * N)) EXPECT_EQ(v, 2.5f);
  // ExpertMatmulCuda reads its offsets and weight pointers on the host.
  auto dev_offsets = Upload(std::vector<int32_t>{0, M});
  const void* wptr[] = {w.data()};
  ExpectInvalid(cuda::ExpertMatmulCuda(*handle, x.as<float>(), dev_offsets.as<int32_t>(), 1, K, wptr, DType::kBF16, N,
                                       false, y.as<float>(), scratch.data(), nullptr),
                "host_offsets");
}

TEST(CudaEmulation, CopyIntoPinnedMemoryLandsWhenTheStreamIsSynchronized) {
  // As on a GPU, reading pinned memory before synchronizing the copy's stream is a race: here it
  // reliably reads the old contents. Pageable destinations are filled before the call returns.
  auto stream = cuda::Stream::Create();
  ASSERT_TRUE(stream.ok());
  const std::vector<float> want = {1.0f, 2.0f, 3.0f};
  auto dev = Upload(want);
  auto pinned = cuda::PinnedMemory::Allocate(3 * sizeof(float));
  ASSERT_TRUE(pinned.ok());
  std::fill_n(pinned->as<float>(), 3, 0.0f);
  ASSERT_TRUE(cuda::CopyToHostAsync(pinned->data(), dev.data(), 3 * sizeof(float), stream->get()).ok());
  ASSERT_TRUE(cuda::ZeroDevice(dev.data(), 3 * sizeof(float), stream->get()).ok());  // after the copy: no effect
  EXPECT_EQ(pinned->as<float>()[0], 0.0f) << "the copy landed before the stream was synchronized";
  ASSERT_TRUE(stream->Synchronize().ok());
  EXPECT_EQ(std::vector<float>(pinned->as<float>(), pinned->as<float>() + 3), want);
  std::vector<float> pageable(3, 5.0f);
  ASSERT_TRUE(cuda::CopyToHostAsync(pageable.data(), dev.data(), 3 * sizeof(float), stream->get()).ok());
  EXPECT_EQ(pageable, std::vector<float>(3, 0.0f));
  std::fill_n(pinned->as<float>(), 3, 7.0f);
  ASSERT_TRUE(cuda::CopyToHost(pinned->data(), dev.data(), 3 * sizeof(float), stream->get()).ok());
  EXPECT_EQ(pinned->as<float>()[2], 0.0f) << "CopyToHost synchronizes its stream";
  // A copy still pending into pinned memory that is freed is dropped, not written into freed memory.
  {
    auto gone = cuda::PinnedMemory::Allocate(3 * sizeof(float));
    ASSERT_TRUE(gone.ok());
    ASSERT_TRUE(cuda::CopyToHostAsync(gone->data(), dev.data(), 3 * sizeof(float), stream->get()).ok());
  }
  EXPECT_TRUE(stream->Synchronize().ok());
}

TEST(CudaEmulation, FreshDeviceMemoryIsNotZero) {
  // cudaMalloc does not clear memory: code that reads what it never wrote must not pass here by luck.
  auto a = Alloc<int32_t>(5);
  for (int32_t v : Download<int32_t>(a, 5)) EXPECT_EQ(v, -1);
  auto f = Alloc<float>(5);
  for (float v : Download<float>(f, 5)) EXPECT_TRUE(std::isnan(v));
}

TEST(CudaEmulationDeathTest, DereferencingADevicePointerOnTheHostCrashes) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  auto a = Upload(std::vector<float>(4, 3.0f));
  const volatile float* p = a.as<const volatile float>();
  EXPECT_EXIT({ [[maybe_unused]] const float v = p[1]; }, testing::KilledBySignal(SIGSEGV), "");
  // The same memory through the API is fine.
  EXPECT_EQ(Download<float>(a, 4), std::vector<float>(4, 3.0f));
}

}  // namespace
}  // namespace brickrt
