// Shared by the serving tests (coordinator, bad input, swap storm): the small random model they
// serve, a generate request, and what a manifest generates for it alone — the reference every
// reply of a coordinator must equal.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "bricks/generator.h"
#include "node/serve_wire.h"
#include "node/submodel.h"
#include "registry/registry.h"
#include "registry/test_model.h"

namespace brickrt::testing {

// 2 layers, d_model 64, 4 attention / 6 MLP experts, vocab 257.
inline TestModelOptions SmallServedModel(uint64_t seed, DType dtype = DType::kF32) {
  TestModelOptions o;
  o.layers = 2;
  o.d_model = 64;
  o.ffd_hidden = 96;
  o.gating_size = 32;
  o.vocab = 257;
  o.attn_experts = 4;
  o.mlp_experts = 6;
  o.dtype = dtype;
  o.seed = seed;
  return o;
}

inline serve::GenerateRequest Request(std::vector<int32_t> prompt, uint32_t n, float temperature = 0,
                                      uint64_t seed = 0) {
  serve::GenerateRequest r;
  r.prompt = std::move(prompt);
  r.max_new_tokens = n;
  r.temperature = temperature;
  r.seed = seed;
  r.stop_at_eos = false;
  return r;
}

// What manifest `ref` generates for r on its own: one sequence, in process.
inline std::vector<int32_t> GenerateAlone(const Registry& reg, const std::string& ref, const serve::GenerateRequest& r) {
  auto m = reg.ResolveModel(ref);
  EXPECT_TRUE(m.ok()) << ref;
  if (!m.ok()) return {};
  auto loaded = LoadManifestModel(reg, *m);
  EXPECT_TRUE(loaded.ok()) << loaded.status().ToString();
  if (!loaded.ok()) return {};
  const int64_t context = static_cast<int64_t>(r.prompt.size()) + r.max_new_tokens;
  Session s(loaded->model, SessionOptions{1, context, context}, nullptr);
  GenerateOptions go;
  go.max_new_tokens = r.max_new_tokens;
  go.sampling.temperature = r.temperature;
  go.sampling.top_k = static_cast<int>(r.top_k);
  go.sampling.top_p = r.top_p;
  go.sampling.seed = r.seed;
  go.stop_at_eos = r.stop_at_eos;
  auto g = Generate(s, {r.prompt}, go);
  EXPECT_TRUE(g.ok()) << g.status().ToString();
  return g.ok() ? g->generated[0] : std::vector<int32_t>{};
}

}  // namespace brickrt::testing
