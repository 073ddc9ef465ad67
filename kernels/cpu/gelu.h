// GELU in the two forms ModuleFormer uses: exact erf form (routers) and the tanh approximation
// "gelu_new" (MLP experts). In place over n floats.
#pragma once

#include <cstdint>

namespace brickrt::kernels {

// 0.5·x·(1 + erf(x/√2))
void GeluErfRef(float* x, int64_t n);
void GeluErf(float* x, int64_t n);
// 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
void GeluTanhRef(float* x, int64_t n);
void GeluTanh(float* x, int64_t n);

}  // namespace brickrt::kernels
