// Sampling: candidates are sorted only as far as needed (top-k, or a growing prefix for top-p).
#include "bricks/sampler.h"

#include <algorithm>
#include <cmath>

namespace brickrt {

Status ValidateSampling(const SamplingParams& p) {
  if (!(p.temperature >= 0.0f) || !std::isfinite(p.temperature))
    return InvalidArgument("temperature must be a finite number >= 0 (0 means greedy)");
  if (p.top_k < 0) return InvalidArgument("top-k must be >= 0 (0 means off)");
  if (!(p.top_p > 0.0f && p.top_p <= 1.0f)) return InvalidArgument("top-p must be in (0, 1] (1 means off)");
  return Status::Ok();
}

Sampler::Sampler(const SamplingParams& params, int64_t vocab)
    : p_(params), vocab_(vocab), rng_(params.seed), order_(static_cast<size_t>(vocab)), probs_(static_cast<size_t>(vocab)) {}

int32_t Sampler::Sample(const float* logits) {
  if (p_.temperature == 0.0f) {
    int32_t best = 0;
    for (int64_t i = 1; i < vocab_; ++i)
      if (logits[i] > logits[best]) best = static_cast<int32_t>(i);
    return best;
  }
  return SampleFiltered(logits);
}

int32_t Sampler::SampleFiltered(const float* logits) {
  float max_logit = logits[0];
  for (int64_t i = 1; i < vocab_; ++i) max_logit = std::max(max_logit, logits[i]);
  // Unnormalised probabilities; the normaliser is summed over the kept candidates below.
  for (int64_t i = 0; i < vocab_; ++i) {
    // Divide rather than multiply by 1/T: 1/T overflows to inf for tiny T, and 0·inf is NaN.
    probs_[static_cast<size_t>(i)] = std::exp((logits[i] - max_logit) / p_.temperature);
    order_[static_cast<size_t>(i)] = static_cast<int32_t>(i);
  }
  // Descending probability, ties to the lower id: a total order, so results are reproducible.
  auto higher = [&](int32_t a, int32_t b) {
    return probs_[static_cast<size_t>(a)] > probs_[static_cast<size_t>(b)] ||
           (probs_[static_cast<size_t>(a)] == probs_[static_cast<size_t>(b)] && a < b);
  };
  // Candidates: order_[0, n). With top-k they are the k best, sorted.
  int64_t n = vocab_;
  int64_t sorted = 0;  // order_[0, sorted) is sorted
  if (p_.top_k > 0 && p_.top_k < n) {
    n = p_.top_k;
    std::partial_sort(order_.begin(), order_.begin() + n, order_.end(), higher);
    sorted = n;
  }
  if (p_.top_p < 1.0f) {
    double total = 0.0;
    for (int64_t i = 0; i < n; ++i) total += probs_[static_cast<size_t>(order_[static_cast<size_t>(i)])];
    // Grow the sorted prefix until it holds top_p of the candidates' mass (usually a few dozen).
    const double target = p_.top_p * total;
    double cum = 0.0;
    int64_t keep = 0;
    for (int64_t want = std::min<int64_t>(64, n);; want = std::min(n, want * 4)) {
      if (want > sorted) {
        std::partial_sort(order_.begin() + sorted, order_.begin() + want, order_.begin() + n, higher);
        sorted = want;
      }
      while (keep < sorted && cum < target) cum += probs_[static_cast<size_t>(order_[static_cast<size_t>(keep++)])];
      if (cum >= target || sorted == n) break;
    }
    n = std::max<int64_t>(keep, 1);
  }
  double mass = 0.0;
  for (int64_t i = 0; i < n; ++i) mass += probs_[static_cast<size_t>(order_[static_cast<size_t>(i)])];
  const double u = rng_.Uniform() * mass;
  double cum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    cum += probs_[static_cast<size_t>(order_[static_cast<size_t>(i)])];
    if (u < cum) return order_[static_cast<size_t>(i)];
  }
  return order_[static_cast<size_t>(n - 1)];
}

}  // namespace brickrt
