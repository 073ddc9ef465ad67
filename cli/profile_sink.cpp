// ProfileSink: slot -> original expert id through BlockTrace::ids, so pruned models count by brick index.
#include "cli/profile_sink.h"

namespace brickrt::cli {

ProfileSink::ProfileSink(const ModelConfig& cfg) {
  for (int64_t l = 0; l < cfg.n_layer; ++l) {
    for (const bool att : {true, false}) {
      LayerProfile p;
      p.layer = l;
      p.attention = att;
      const size_t n = static_cast<size_t>((att ? cfg.n_att_experts : cfg.n_mlp_experts)[static_cast<size_t>(l)]);
      p.counts.assign(n, 0);
      p.gate_mass.assign(n, 0.0);
      layers_.push_back(std::move(p));
    }
  }
}

void ProfileSink::OnBlock(const BlockTrace& t) {
  const size_t at = static_cast<size_t>(2 * t.layer + (t.attention ? 0 : 1));
  if (at >= layers_.size()) return;
  LayerProfile& p = layers_[at];
  if (t.layer == 0 && t.attention) tokens_ += t.n;
  for (int64_t r = 0; r < t.n; ++r) {
    for (int j = 0; j < t.k; ++j) {
      const int32_t slot = t.slots[r * t.k + j];
      if (slot < 0) continue;  // a row routed to fewer than k experts (skip-expert)
      const int64_t id = t.ids != nullptr ? (*t.ids)[static_cast<size_t>(slot)] : slot;
      if (id < 0 || id >= static_cast<int64_t>(p.counts.size())) continue;
      ++p.counts[static_cast<size_t>(id)];
      p.gate_mass[static_cast<size_t>(id)] += t.gates[r * t.k + j];
    }
  }
}

}  // namespace brickrt::cli
