// GELU (erf and tanh forms): double-precision references, portable F32 loops, and the dispatch to
// the AVX-512 versions in gelu_avx512.cpp.
#include <cmath>

#include "kernels/cpu/gelu.h"
#include "kernels/cpu/variants.h"

namespace brickrt::kernels {

void GeluErfRef(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const double v = x[i];
    x[i] = static_cast<float>(0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0))));
  }
}

void GeluTanhRef(float* x, int64_t n) {
  const double c = std::sqrt(2.0 / M_PI);
  for (int64_t i = 0; i < n; ++i) {
    const double v = x[i];
    x[i] = static_cast<float>(0.5 * v * (1.0 + std::tanh(c * (v + 0.044715 * v * v * v))));
  }
}

namespace internal {

void GeluErfPortable(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = 0.5f * x[i] * (1.0f + std::erf(x[i] * 0.70710678118654752f));
}

void GeluTanhPortable(float* x, int64_t n) {
  // 0.5·x·(1 + tanh(u)) = x·σ(2u) = x / (1 + exp(−2u)): one exp instead of a tanh; for x → −∞ the
  // exp overflows to +inf and the result is −0, the correct limit.
  constexpr float kC = 0.7978845608028654f;  // √(2/π)
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    const float u = kC * (v + 0.044715f * v * v * v);
    x[i] = v / (1.0f + std::exp(-2.0f * u));
  }
}

}  // namespace internal

void GeluErf(float* x, int64_t n) {
  if (internal::CpuHasAvx512()) {
    internal::GeluErfAvx512(x, n);
  } else {
    internal::GeluErfPortable(x, n);
  }
}

void GeluTanh(float* x, int64_t n) {
  if (internal::CpuHasAvx512()) {
    internal::GeluTanhAvx512(x, n);
  } else {
    internal::GeluTanhPortable(x, n);
  }
}

}  // namespace brickrt::kernels
