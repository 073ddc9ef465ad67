// Sampler: next-token choice from logits — greedy (temperature 0), or temperature with optional
// top-k and top-p (nucleus) filtering, from a seeded generator that gives the same tokens on every
// platform. Scratch is sized to the vocabulary at construction: Sample() does not allocate.
#pragma once

#include <cstdint>
#include <vector>

#include "core/rng.h"
#include "core/status.h"

namespace brickrt {

struct SamplingParams {
  float temperature = 1.0f;  // 0: greedy
  int top_k = 0;             // 0: off
  float top_p = 1.0f;        // 1: off
  uint64_t seed = 0;
};

// Checks ranges: temperature >= 0, top_k >= 0, 0 < top_p <= 1.
Status ValidateSampling(const SamplingParams& p);

class Sampler {
 public:
  Sampler(const SamplingParams& params, int64_t vocab);

  // logits F32 [vocab]. Greedy picks the lowest id among equal maxima.
  int32_t Sample(const float* logits);

 private:
  int32_t SampleFiltered(const float* logits);

  SamplingParams p_;
  int64_t vocab_;
  Rng rng_;
  std::vector<int32_t> order_;  // [vocab] candidate ids
  std::vector<float> probs_;    // [vocab]
};

}  // namespace brickrt
