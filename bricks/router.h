// Router brick (one per attention layer and per MLP layer): Linear+bias -> erf GELU -> Linear (no
// bias) -> softmax over all experts -> top-k, gates not renormalised (spec §2.3, G3, G4).
#pragma once

#include <cstdint>
#include <vector>

#include "core/brick_data.h"
#include "core/status.h"
#include "core/tensor.h"
#include "core/thread_pool.h"
#include "kernels/cpu/packed_matrix.h"

namespace brickrt {

class Router {
 public:
  // Validates w1 [G, D], b1 [G], w2 [n_experts, G] and packs them for the kernels (y = x·Wᵀ). kept:
  // the experts the layer runs (ascending original ids; empty = all): only their rows of w2 are packed,
  // so a removed expert's logit never enters the softmax and ids count kept experts 0, 1, ...
  static Result<Router> FromData(const BrickData& brick, int64_t d_model, int64_t gating_size, int64_t n_experts,
                                 const std::vector<int64_t>& kept = {});

  int64_t n_experts() const { return w2_.N(); }  // kept experts
  int64_t gating_size() const { return w1_.N(); }
  const kernels::PackedMatrix& w1() const { return w1_; }  // storage dtype, K = D, N = G
  const Tensor& b1() const { return b1_; }                 // F32 [G]
  const kernels::PackedMatrix& w2() const { return w2_; }  // storage dtype, K = G, N = kept E

  // x F32 [M, D] -> gates F32 [M, k], ids int32 [M, k] (descending gate, ties -> lower id).
  // scratch: F32 [M, G + E] floats. skip: null, or [n_experts()] flags of experts to leave out of this
  // routing: their logits become −inf before the softmax, so they get no probability mass and are never
  // chosen (the drop semantics of removed experts, decided per call). REQUIRES: 1 <= k <= the experts
  // not skipped.
  void Route(const float* x, int64_t M, int k, float* gates, int32_t* ids, float* scratch, ThreadPool* pool,
             const uint8_t* skip = nullptr) const;

 private:
  kernels::PackedMatrix w1_;  // storage dtype, K = D, N = G
  Tensor b1_;                 // F32 [G]
  kernels::PackedMatrix w2_;  // storage dtype, K = G, N = E
};

}  // namespace brickrt
