// LayerNorm over the last dimension (PyTorch semantics: biased variance, eps inside the sqrt):
// a double-precision reference and an F32 two-pass version that GCC vectorizes.
#include <cmath>

#include "kernels/cpu/layernorm.h"

namespace brickrt::kernels {

void LayerNormRef(const float* x, int64_t M, int64_t D, const float* w, const float* b, float eps, float* y) {
  // x, y F32 [M, D]; w, b F32 [D]. Stats in double; y may alias x (each row's stats are read first).
  for (int64_t m = 0; m < M; ++m) {
    const float* xr = x + m * D;
    float* yr = y + m * D;
    double mean = 0;
    for (int64_t i = 0; i < D; ++i) mean += xr[i];
    mean /= static_cast<double>(D);
    double var = 0;
    for (int64_t i = 0; i < D; ++i) var += (xr[i] - mean) * (xr[i] - mean);
    var /= static_cast<double>(D);
    const double inv = 1.0 / std::sqrt(var + static_cast<double>(eps));
    for (int64_t i = 0; i < D; ++i) yr[i] = static_cast<float>((xr[i] - mean) * inv * w[i] + b[i]);
  }
}

namespace {
// Eight independent partial sums: lets GCC keep a vector accumulator without -ffast-math and
// halves the rounding error growth of a single running sum.
constexpr int kLanes = 8;

float SumF32(const float* x, int64_t n) {
  float part[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int l = 0; l < kLanes; ++l) part[l] += x[i + l];
  }
  float s = 0;
  for (; i < n; ++i) s += x[i];
  for (int l = 0; l < kLanes; ++l) s += part[l];
  return s;
}

float SumSqDevF32(const float* x, int64_t n, float mean) {
  float part[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int l = 0; l < kLanes; ++l) {
      const float d = x[i + l] - mean;
      part[l] += d * d;
    }
  }
  float s = 0;
  for (; i < n; ++i) s += (x[i] - mean) * (x[i] - mean);
  for (int l = 0; l < kLanes; ++l) s += part[l];
  return s;
}
}  // namespace

void LayerNorm(const float* x, int64_t M, int64_t D, const float* w, const float* b, float eps, float* y) {
  // Two passes (mean, then squared deviations) rather than E[x²] − E[x]²: no cancellation when
  // |mean| ≫ std, which residual streams do have.
  for (int64_t m = 0; m < M; ++m) {
    const float* xr = x + m * D;
    float* yr = y + m * D;
    const float mean = SumF32(xr, D) / static_cast<float>(D);
    const float var = SumSqDevF32(xr, D, mean) / static_cast<float>(D);
    const float inv = 1.0f / std::sqrt(var + eps);
    for (int64_t i = 0; i < D; ++i) yr[i] = (xr[i] - mean) * inv * w[i] + b[i];
  }
}

}  // namespace brickrt::kernels
