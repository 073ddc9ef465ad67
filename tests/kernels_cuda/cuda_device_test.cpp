// The CUDA build and runtime: skips without a GPU, runs the on-device self-test with one.
#include <gtest/gtest.h>

#include "kernels/cuda/device.h"

namespace brickrt {
namespace {

TEST(CudaDevice, SelfTestOnEveryDevice) {
  const auto devices = cuda::ListDevices();
  if (devices.empty()) GTEST_SKIP() << "no CUDA device on this machine";
  for (const auto& d : devices) {
    EXPECT_FALSE(d.name.empty());
    EXPECT_GT(d.total_bytes, 0u);
    const Status st = cuda::SelfTest(d.index);
    EXPECT_TRUE(st.ok()) << d.name << ": " << st.ToString();
  }
}

TEST(CudaDevice, MissingDeviceIsUnavailableNotACrash) {
  const auto devices = cuda::ListDevices();
  EXPECT_EQ(cuda::SelfTest(static_cast<int>(devices.size())).code(), StatusCode::kUnavailable);
  EXPECT_EQ(cuda::UseDevice(static_cast<int>(devices.size())).code(), StatusCode::kUnavailable);
  EXPECT_EQ(cuda::UseDevice(-1).code(), StatusCode::kUnavailable);
}

TEST(CudaDevice, UseEveryDevice) {
  const auto devices = cuda::ListDevices();
  if (devices.empty()) GTEST_SKIP() << "no CUDA device on this machine";
  for (const auto& d : devices) EXPECT_TRUE(cuda::UseDevice(d.index).ok()) << d.name;
  EXPECT_TRUE(cuda::UseDevice(devices[0].index).ok());
}

}  // namespace
}  // namespace brickrt
