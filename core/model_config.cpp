// ModelConfig helpers for submodels with removed experts.
#include "core/model_config.h"

#include <algorithm>

namespace brickrt {
namespace {
const std::vector<int64_t>* RemovedList(const ModelConfig& c, bool attention, int64_t layer) {
  const auto& all = attention ? c.att_removed : c.mlp_removed;
  if (layer < 0 || static_cast<size_t>(layer) >= all.size()) return nullptr;
  return &all[static_cast<size_t>(layer)];
}
}  // namespace

bool ModelConfig::IsRemoved(bool attention, int64_t layer, int64_t expert) const {
  const std::vector<int64_t>* r = RemovedList(*this, attention, layer);
  return r != nullptr && std::binary_search(r->begin(), r->end(), expert);
}

int64_t ModelConfig::KeptExperts(bool attention, int64_t layer) const {
  const auto& counts = attention ? n_att_experts : n_mlp_experts;
  const int64_t n = counts.at(static_cast<size_t>(layer));
  const std::vector<int64_t>* r = RemovedList(*this, attention, layer);
  return r == nullptr ? n : n - static_cast<int64_t>(r->size());
}

std::vector<int64_t> ModelConfig::KeptExpertIds(bool attention, int64_t layer) const {
  const auto& counts = attention ? n_att_experts : n_mlp_experts;
  std::vector<int64_t> ids;
  for (int64_t e = 0; e < counts.at(static_cast<size_t>(layer)); ++e)
    if (!IsRemoved(attention, layer, e)) ids.push_back(e);
  return ids;
}

bool ModelConfig::HasRemovals() const {
  for (const auto* all : {&att_removed, &mlp_removed})
    for (const auto& r : *all)
      if (!r.empty()) return true;
  return false;
}

}  // namespace brickrt
