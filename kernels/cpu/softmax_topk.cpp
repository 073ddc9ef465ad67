// Router selection (spec §2.3, G3): softmax over all E experts, then the top k in descending order,
// ties to the lower expert index, gates not renormalised. A literal double reference and an F32 version.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "core/status.h"
#include "kernels/cpu/softmax_topk.h"

namespace brickrt::kernels {
namespace {

// The selection order, total over all floats: larger logit first, NaN below everything (−inf
// included), equal logits (and NaN vs NaN) to the lower index. True when expert a ranks above b.
bool RanksAbove(const float* l, int64_t a, int64_t b) {
  const bool nan_a = std::isnan(l[a]), nan_b = std::isnan(l[b]);
  if (nan_a != nan_b) return nan_b;
  if (!nan_a && l[a] != l[b]) return l[a] > l[b];
  return a < b;
}

}  // namespace

void SoftmaxTopKRef(const float* logits, int64_t M, int64_t E, int k, float* gates, int32_t* ids) {
  // logits F32 [M, E] -> gates F32 [M, k], ids int32 [M, k]. Softmax in double, then a stable sort.
  BRICK_ASSERT(k >= 1 && k <= E, "SoftmaxTopKRef: need 1 <= k <= E");
  std::vector<double> p(static_cast<size_t>(E));
  std::vector<int32_t> order(static_cast<size_t>(E));
  for (int64_t m = 0; m < M; ++m) {
    const float* l = logits + m * E;
    double mx = -std::numeric_limits<double>::infinity();
    for (int64_t e = 0; e < E; ++e) mx = std::max(mx, static_cast<double>(l[e]));  // NaN skipped
    double sum = 0;
    for (int64_t e = 0; e < E; ++e) sum += p[static_cast<size_t>(e)] = std::exp(l[e] - mx);
    for (double& v : p) v /= sum;
    std::iota(order.begin(), order.end(), 0);
    // Sorted on the logits, which order like the probabilities (softmax is strictly increasing) but
    // do not collapse logits whose probabilities underflow to 0 or are NaN (±inf). NaN ranks below
    // everything (a strict weak order, unlike a plain `>`), and the stable sort keeps ascending expert
    // order among equals, i.e. ties go to the lower index.
    std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
      return !std::isnan(l[a]) && (std::isnan(l[b]) || l[a] > l[b]);
    });
    for (int i = 0; i < k; ++i) {
      ids[m * k + i] = order[static_cast<size_t>(i)];
      gates[m * k + i] = static_cast<float>(p[static_cast<size_t>(order[static_cast<size_t>(i)])]);
    }
  }
}

void SoftmaxTopK(const float* logits, int64_t M, int64_t E, int k, float* gates, int32_t* ids) {
  BRICK_ASSERT(k >= 1 && k <= E, "SoftmaxTopK: need 1 <= k <= E");
  for (int64_t m = 0; m < M; ++m) {
    const float* l = logits + m * E;
    int32_t* id = ids + m * k;
    float* g = gates + m * k;
    float mx = l[0];
    for (int64_t e = 1; e < E; ++e) mx = std::max(mx, l[e]);
    float sum = 0;
    for (int64_t e = 0; e < E; ++e) sum += std::exp(l[e] - mx);
    const float inv = 1.0f / sum;
    // Selection on the logits, not on the rounded probabilities: softmax is strictly increasing, so the
    // order is the same, and distinct logits that would round to equal F32 probabilities cannot tie.
    // k passes over E (k, E <= a few hundred), no scratch: pass i takes the best expert ranked strictly
    // below pick i-1 in a total order (RanksAbove: NaN last, ties low). Exactly E - i experts qualify,
    // so every pass finds one and the ids are distinct and in [0, E) whatever the logits.
    for (int i = 0; i < k; ++i) {
      int32_t best = -1;
      for (int64_t e = 0; e < E; ++e) {
        if (i > 0 && !RanksAbove(l, id[i - 1], e)) continue;  // picked already
        if (best < 0 || RanksAbove(l, e, best)) best = static_cast<int32_t>(e);
      }
      id[i] = best;
      g[i] = std::exp(l[best] - mx) * inv;
    }
  }
}

}  // namespace brickrt::kernels
