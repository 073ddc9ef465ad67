// Naive stick-breaking attention reference (spec §2.5): double precision, the literal exclusive
// suffix sum, no early stop. The oracle for the decode and prefill kernels.
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/stickbreak.h"

namespace brickrt::kernels {
namespace {
double LogSigmoidD(double x) { return std::min(x, 0.0) - std::log1p(std::exp(-std::fabs(x))); }
}  // namespace

void StickBreakRef(const float* q, int64_t ldq, int64_t n, const int64_t* positions, const float* k,
                   const float* v, int64_t ldkv, int64_t d, float scale, float* out, int64_t ldo) {
  for (int64_t r = 0; r < n; ++r) {
    const float* qr = q + r * ldq;
    const int64_t p = positions[r];  // keys 0..p, the diagonal included (G5)
    std::vector<double> l(static_cast<size_t>(p + 1));
    for (int64_t j = 0; j <= p; ++j) {
      double dot = 0;
      for (int64_t i = 0; i < d; ++i) dot += static_cast<double>(qr[i]) * k[j * ldkv + i];
      l[static_cast<size_t>(j)] = static_cast<double>(scale) * dot;
    }
    std::vector<double> acc(static_cast<size_t>(d), 0.0);
    for (int64_t j = 0; j <= p; ++j) {
      // R_j = Σ_{m=j+1..p} log σ(−l_m), recomputed from scratch: O(p²) on purpose, nothing clever.
      double rj = 0;
      for (int64_t m = j + 1; m <= p; ++m) rj += LogSigmoidD(-l[static_cast<size_t>(m)]);
      const double a = std::exp(LogSigmoidD(l[static_cast<size_t>(j)]) + rj);
      for (int64_t i = 0; i < d; ++i) acc[static_cast<size_t>(i)] += a * v[j * ldkv + i];
    }
    for (int64_t i = 0; i < d; ++i) out[r * ldo + i] = static_cast<float>(acc[static_cast<size_t>(i)]);
  }
}

}  // namespace brickrt::kernels
