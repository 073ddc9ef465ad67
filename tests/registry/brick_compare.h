// Byte-for-byte comparison of brick lists, shared by the checkpoint and registry tests.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "core/brick_data.h"

namespace brickrt::testing {

inline void ExpectSameBricks(const std::vector<BrickData>& want, const std::vector<BrickData>& got) {
  ASSERT_EQ(want.size(), got.size());
  for (size_t i = 0; i < want.size(); ++i) {
    const BrickData& a = want[i];
    const BrickData& b = got[i];
    ASSERT_EQ(a.Name(), b.Name()) << "brick " << i;
    EXPECT_EQ(a.kind, b.kind);
    ASSERT_EQ(a.tensors.size(), b.tensors.size()) << a.Name();
    for (size_t t = 0; t < a.tensors.size(); ++t) {
      const Tensor& x = a.tensors[t].second;
      const Tensor& y = b.tensors[t].second;
      EXPECT_EQ(a.tensors[t].first, b.tensors[t].first) << a.Name();
      EXPECT_EQ(x.dtype(), y.dtype()) << a.Name();
      ASSERT_EQ(x.shape(), y.shape()) << a.Name() << "." << a.tensors[t].first;
      EXPECT_EQ(std::memcmp(x.data(), y.data(), x.nbytes()), 0) << a.Name() << "." << a.tensors[t].first;
      EXPECT_EQ(reinterpret_cast<uintptr_t>(y.data()) % 64, 0u) << a.Name() << " storage not 64-byte aligned";
    }
  }
}

}  // namespace brickrt::testing
