// Naive reference matmul: the oracle every optimized matmul (CPU and CUDA) is tested against.
// Plain loops, double accumulation, no intrinsics.
#include <vector>

#include "kernels/cpu/matmul.h"

namespace brickrt::kernels {
namespace {

// One weight element widened to double; exact for all three dtypes.
double WeightAt(const void* w, DType wt, int64_t i) {
  switch (wt) {
    case DType::kF32: return static_cast<const float*>(w)[i];
    case DType::kF16: return F16ToF32(static_cast<const uint16_t*>(w)[i]);
    case DType::kBF16: return Bf16ToF32(static_cast<const uint16_t*>(w)[i]);
  }
  return 0.0;
}

}  // namespace

void MatmulRef(const float* x, int64_t M, int64_t K, const void* w, DType wt, int64_t N, float* y) {
  // x F32 [M, K], w [K, N], y F32 [M, N]. Loop order m, k, n keeps W reads row-major; the double
  // accumulator row makes the result independent of summation order to ~1e-16.
  std::vector<double> acc(static_cast<size_t>(N));
  for (int64_t m = 0; m < M; ++m) {
    std::fill(acc.begin(), acc.end(), 0.0);
    for (int64_t k = 0; k < K; ++k) {
      const double xv = x[m * K + k];
      for (int64_t n = 0; n < N; ++n) acc[static_cast<size_t>(n)] += xv * WeightAt(w, wt, k * N + n);
    }
    for (int64_t n = 0; n < N; ++n) y[m * N + n] = static_cast<float>(acc[static_cast<size_t>(n)]);
  }
}

}  // namespace brickrt::kernels
