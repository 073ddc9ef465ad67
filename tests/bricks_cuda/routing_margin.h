// Shared by the GPU-vs-CPU tests: how close the CPU model's router decisions come to a tie, so a test
// can assert that arithmetic differences of ~1e-7 in a probability cannot change which experts run.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "bricks/blocks.h"
#include "bricks/kv_cache.h"
#include "bricks/model.h"
#include "bricks/workspace.h"

namespace brickrt::testing {

// The smallest top-k margin p_k − p_{k+1} of any router decision the CPU model makes on `tokens` (one
// fresh sequence; a row's routing depends only on its own sequence, so batching does not change it).
inline float MinRoutingMargin(const Model& m, const std::vector<int32_t>& tokens) {
  const ModelConfig& cfg = m.config();
  const auto T = static_cast<int64_t>(tokens.size());
  const int64_t D = cfg.n_embd;
  Workspace ws(cfg, T, T, 1, m.MaxLoraRank());
  KvCache cache(cfg.n_layer, T, D);
  KvCache* caches[] = {&cache};
  std::vector<int32_t> seq(static_cast<size_t>(T), 0);
  std::vector<int64_t> pos(static_cast<size_t>(T));
  for (int64_t t = 0; t < T; ++t) pos[static_cast<size_t>(t)] = t;
  const StepRows rows{T, seq.data(), pos.data()};
  float* h = ws.hidden.mutable_data_as<float>();
  m.embedding().Lookup(tokens.data(), T, h);
  std::vector<float> x(static_cast<size_t>(T * D)), gates, scratch;
  std::vector<int32_t> ids;
  float margin = 1.0f;
  auto check = [&](const Norm& ln, const Router& r, int k) {
    const int64_t E = r.n_experts();
    if (k >= E) return;
    ln.Apply(h, T, x.data());
    gates.resize(static_cast<size_t>(T * E));
    ids.resize(gates.size());
    scratch.resize(static_cast<size_t>(T * (r.gating_size() + E)));
    r.Route(x.data(), T, static_cast<int>(E), gates.data(), ids.data(), scratch.data(), nullptr);  // all, sorted
    for (int64_t t = 0; t < T; ++t) margin = std::min(margin, gates[t * E + k - 1] - gates[t * E + k]);
  };
  for (size_t l = 0; l < m.layers().size(); ++l) {
    const Layer& layer = m.layers()[l];
    check(layer.ln1, layer.attn_router, cfg.k_att);
    RunAttentionBlock(layer, static_cast<int64_t>(l), cfg, rows, caches, ws, nullptr);
    check(layer.ln2, layer.mlp_router, cfg.k_mlp);
    EXPECT_TRUE(RunMlpBlock(layer, static_cast<int64_t>(l), cfg, T, ws, nullptr).ok());
  }
  return margin;
}

}  // namespace brickrt::testing
