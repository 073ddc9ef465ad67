// LayerNorm over the last dimension with learnable weight and bias (PyTorch semantics: biased
// variance, eps inside the square root).
#pragma once

#include <cstdint>

namespace brickrt::kernels {

// x F32 [M, D] -> y F32 [M, D]; w, b F32 [D]. y may alias x.
void LayerNormRef(const float* x, int64_t M, int64_t D, const float* w, const float* b, float eps, float* y);
void LayerNorm(const float* x, int64_t M, int64_t D, const float* w, const float* b, float eps, float* y);

}  // namespace brickrt::kernels
