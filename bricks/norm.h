// LayerNorm brick (ln_1, ln_2 of each layer and the final ln_f): weight and bias widened to F32.
#pragma once

#include <memory>

#include "core/brick_data.h"
#include "core/status.h"
#include "core/tensor.h"

namespace brickrt {

class Norm {
 public:
  // REQUIRES nothing: validates that "weight" and "bias" are [d_model].
  static Result<Norm> FromData(const BrickData& brick, int64_t d_model, float eps);

  // x F32 [M, D] -> y F32 [M, D]; y may alias x.
  void Apply(const float* x, int64_t M, float* y) const;

  const Tensor& weight() const { return weight_; }  // F32 [D]
  const Tensor& bias() const { return bias_; }      // F32 [D]
  float eps() const { return eps_; }

 private:
  Tensor weight_;  // F32 [D]
  Tensor bias_;    // F32 [D]
  float eps_ = 1e-5f;
};

// Checks that `brick` has tensor `name` of exactly `shape`; the error names the brick and tensor.
Status ExpectTensor(const BrickData& brick, const char* name, const Shape& shape);

}  // namespace brickrt
