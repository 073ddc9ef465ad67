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

// Input files for GrowModel (registry/grow.h) made from a model's own bricks: experts [first, first + n)
// of `layer` stacked into [n, in, out] tensors under checkpoint names ("mlpf.experts.weight", ...), and
// rows [first, first + n) of that layer's router w2 as "<module>gate.w_gate.3.weight"; names prefixed
// by `prefix` (e.g. "transformer.h.2."). Errors: NotFound when the bricks lack an expert or the router.
Status WriteGrowExperts(const std::string& path, const std::vector<BrickData>& bricks, int64_t layer, bool attention,
                        int64_t first, int64_t n, const std::string& prefix = "");
Status WriteGrowRouterRows(const std::string& path, const std::vector<BrickData>& bricks, int64_t layer,
                           bool attention, int64_t first, int64_t n, const std::string& prefix = "");

// MakeRandomModel + WriteHfCheckpoint(dir, ..., write_opts).
Status MakeTestModel(const std::string& dir, const TestModelOptions& opts, const WriteOptions& write_opts = {});

struct RandomLoraOptions {
  // Comma-separated globs ('*' any run of characters, '?' one character) over target names:
  // "L<i>.attn.E<e>.wq|wo", "L<i>.mlp.E<e>.w1|w2", "lm_head.weight" (docs/plugins.md).
  std::string targets = "L*.mlp.E*.w1,L*.mlp.E*.w2";
  int64_t rank = 8;
  float alpha = 16.0f;
  DType dtype = DType::kBF16;  // of "a" and "b"
  uint64_t seed = 1;
};

// Random lora bricks (core/brick_data.h) for `base`, one per selected target, in ReadPeftAdapter's
// order (by layer, attention before MLP, by expert, wq/w1 before wo/w2, lm_head last). Experts the
// base removed (a submodel) are never targets. Each brick: "a" [r, in] ~ N(0, 1/in), "b" [out, r] ~
// 0.5 · N(0, 1/r), "alpha" F32 [1]; so for x of unit-size components, x·Aᵀ has unit-size components
// and the delta alpha/r · B·A·x is 0.5·alpha/r times the size of the base projection's output: with
// the defaults as large as the base's own, visible in the logits yet O(1). PEFT initializes B to zero
// (a fresh adapter changes nothing); these are random on purpose, to stand in for a trained adapter.
// Same determinism as MakeRandomModel: each brick has its own PRNG stream (seeded from seed and the
// target name), so its bytes do not depend on which other targets are selected.
// Errors: InvalidArgument for rank < 1, a non-finite alpha, an empty glob (",,"), a glob that selects
// no target of `base` (the message names it and gives example targets), or a malformed base config.
Result<std::vector<BrickData>> MakeRandomLoras(const ModelConfig& base, const RandomLoraOptions& opts);

}  // namespace brickrt
