// Shared by the CUDA parity tests: the skip without a device, uploads and downloads of std::vectors.
#pragma once

#include <gtest/gtest.h>

#include <utility>
#include <vector>

#include "kernels/cuda/device.h"
#include "kernels/cuda/memory.h"

// Skips the calling test on a machine without a CUDA device (CI has nvcc but no GPU).
#define BRICK_REQUIRE_CUDA_DEVICE()                                                                          \
  do {                                                                                                       \
    if (::brickrt::cuda::ListDevices().empty())                                                              \
      GTEST_SKIP() << "no CUDA device on this machine: GPU parity test skipped (it runs where a GPU is present)"; \
  } while (0)

namespace brickrt::cuda_test {

// A device copy of v (on the default stream); an empty buffer, and a test failure, on error.
template <typename T>
cuda::DeviceMemory Upload(const std::vector<T>& v) {
  auto m = cuda::DeviceMemory::Allocate(v.size() * sizeof(T));
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  if (!m.ok()) return {};
  const Status st = cuda::CopyToDevice(m->data(), v.data(), v.size() * sizeof(T), nullptr);
  EXPECT_TRUE(st.ok()) << st.ToString();
  return std::move(m).value();
}

// Uninitialised device room for n elements of T.
template <typename T>
cuda::DeviceMemory Alloc(size_t n) {
  auto m = cuda::DeviceMemory::Allocate(n * sizeof(T));
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  if (!m.ok()) return {};
  return std::move(m).value();
}

// n elements of T copied back (synchronizes the default stream, so kernel faults surface here).
template <typename T>
std::vector<T> Download(const cuda::DeviceMemory& m, size_t n) {
  std::vector<T> out(n);
  const Status st = cuda::CopyToHost(out.data(), m.data(), n * sizeof(T), nullptr);
  EXPECT_TRUE(st.ok()) << st.ToString();
  return out;
}

}  // namespace brickrt::cuda_test
