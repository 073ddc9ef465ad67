// Dispatch: the routing table of a layer (token -> k (expert, gate) pairs) regrouped by expert, so
// each expert runs once on all of its rows (spec §2.7, G15). Plain values: the same groups can be
// run locally or shipped to a node.
#pragma once

#include <cstdint>
#include <vector>

namespace brickrt {

struct ExpertGroups {
  int64_t n_experts = 0;
  std::vector<int32_t> offsets;  // [E + 1]: pairs of expert e are [offsets[e], offsets[e+1])
  std::vector<int32_t> rows;     // [M·k]: token row of each pair, ascending within an expert
  std::vector<float> gates;      // [M·k]: gate of each pair

  // Reserves room for `max_pairs` pairs and `max_experts` experts so Build never allocates.
  void Reserve(int64_t max_pairs, int64_t max_experts);
  // Counting sort of the (row, slot) pairs by expert id. ids, gates: [M, k].
  // REQUIRES: every id in [0, n_experts).
  void Build(const int32_t* ids, const float* gate_values, int64_t M, int k, int64_t n_experts);

  int32_t count(int64_t e) const { return offsets[e + 1] - offsets[e]; }
};

}  // namespace brickrt
