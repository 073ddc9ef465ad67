// The MoLM-shaped random model the end-to-end benchmarks run (CPU: e2e_bench, GPU: cuda_model_bench):
// MoLM-350M-4B's widths (d_model 1024, MLP experts of 2048, 16 attention and 32 MLP experts per layer,
// top-2 of each, router hidden 256, the 50295-token vocabulary), said once so both measure one model.
#pragma once

#include "core/dtype.h"
#include "registry/test_model.h"

namespace brickrt::bench {

inline TestModelOptions MolmShaped(int layers, DType dtype) {
  return {.layers = layers, .d_model = 1024, .ffd_hidden = 2048, .gating_size = 256, .vocab = 50295,
          .attn_experts = 16, .mlp_experts = 32, .k_att = 2, .k_mlp = 2, .dtype = dtype};
}

}  // namespace brickrt::bench
