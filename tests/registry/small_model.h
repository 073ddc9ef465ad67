// The small random model the registry and checkpoint tests share: 3 layers with different expert
// counts per layer, so per-layer counts must survive every round trip.
#pragma once

#include <gtest/gtest.h>

#include <utility>
#include <vector>

#include "registry/test_model.h"

namespace brickrt::testing {

// 3 layers with different expert counts per layer, so per-layer counts must survive the round trip.
inline TestModelOptions SmallModelOptions(DType dtype = DType::kBF16, uint64_t seed = 7) {
  TestModelOptions o;
  o.layers = 3;
  o.d_model = 32;
  o.ffd_hidden = 48;
  o.gating_size = 16;
  o.vocab = 50;
  o.attn_experts_per_layer = {4, 3, 5};
  o.mlp_experts_per_layer = {6, 4, 5};
  o.dtype = dtype;
  o.seed = seed;
  return o;
}

inline std::pair<ModelConfig, std::vector<BrickData>> SmallModel(DType dtype = DType::kBF16, uint64_t seed = 7) {
  auto m = MakeRandomModel(SmallModelOptions(dtype, seed));
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  return std::move(m).value();
}

}  // namespace brickrt::testing
