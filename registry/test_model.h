// Deterministic random ModuleFormer models for tests, demos and benchmarks: same options, same bytes,
// on every platform (own PRNG and integer-only normal approximation, no <random> distributions).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/brick_data.h"
#include "core/model_config.h"
#include "core/status.h"
#include "registry/hf_checkpoint.h"

namespace brickrt {

struct TestModelOptions {
  int layers = 4;
  int64_t d_model = 256, ffd_hidden = 512, gating_size = 64, vocab = 1000;
  int64_t attn_experts = 8, mlp_experts = 16;
  // Optional per-layer overrides (size == layers when non-empty), e.g. for pruned/grown models.
  std::vector<int64_t> attn_experts_per_layer, mlp_experts_per_layer;
  int k_att = 2, k_mlp = 2;
  DType dtype = DType::kBF16;
  uint64_t seed = 1;
  bool tie_word_embeddings = false;  // true: no separate lm_head weights (the head shares wte)
};

// A random model: config (att_hidden = d_model, n_head = 1) and bricks in LoadHfCheckpoint's order.
// Scales keep activations O(1) so routing and attention are non-trivial: expert and router weights
// ~ N(0, 1/in_features), LayerNorm weight 1 + N(0, 0.1²), biases N(0, 0.1²), embedding N(0, 1),
// lm_head N(0, 1/D). Each brick has its own PRNG stream (seeded from seed, kind, layer, index), so a
// brick's bytes do not depend on the other bricks' sizes. "N" is the sum of four 16-bit uniforms,
// rescaled (Irwin-Hall, |z| <= 2·sqrt(3)): integer arithmetic, so bit-identical everywhere.
// Errors: InvalidArgument for non-positive sizes, override lists of the wrong length, or k > experts.
Result<std::pair<ModelConfig, std::vector<BrickData>>> MakeRandomModel(const TestModelOptions& opts);

// MakeRandomModel + WriteHfCheckpoint(dir, ..., write_opts).
Status MakeTestModel(const std::string& dir, const TestModelOptions& opts, const WriteOptions& write_opts = {});

}  // namespace brickrt
