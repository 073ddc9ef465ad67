// Counting sort of routing pairs by expert (stable, so rows stay ascending within an expert).
#include "bricks/dispatch.h"

#include "core/status.h"

namespace brickrt {

void ExpertGroups::Reserve(int64_t max_pairs, int64_t max_experts) {
  offsets.reserve(static_cast<size_t>(max_experts + 1));
  rows.reserve(static_cast<size_t>(max_pairs));
  gates.reserve(static_cast<size_t>(max_pairs));
}

void ExpertGroups::Build(const int32_t* ids, const float* gate_values, int64_t M, int k, int64_t E) {
  n_experts = E;
  offsets.assign(static_cast<size_t>(E + 1), 0);
  const int64_t n = M * k;
  for (int64_t p = 0; p < n; ++p) {
    BRICK_ASSERT(ids[p] >= 0 && ids[p] < E, "expert id out of range");
    ++offsets[static_cast<size_t>(ids[p]) + 1];
  }
  for (int64_t e = 0; e < E; ++e) offsets[e + 1] += offsets[e];
  rows.resize(static_cast<size_t>(n));
  gates.resize(static_cast<size_t>(n));
  // Fill using a running cursor per expert; offsets[e] is restored afterwards.
  for (int64_t p = 0; p < n; ++p) {
    const int32_t slot = offsets[ids[p]]++;
    rows[slot] = static_cast<int32_t>(p / k);
    gates[slot] = gate_values[p];
  }
  for (int64_t e = E; e > 0; --e) offsets[e] = offsets[e - 1];
  offsets[0] = 0;
}

}  // namespace brickrt
