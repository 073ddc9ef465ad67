// CompactRemovedExperts: the inverse view of ModelConfig's removed lists (what a checkpoint with the
// experts deleted looks like).
#include "registry/compact.h"

#include <cstring>

namespace brickrt {
namespace {

// Rows `keep` of a row-major [E, G] matrix.
Tensor SelectRows(const Tensor& t, const std::vector<int64_t>& keep) {
  const int64_t G = t.dim(1);
  Tensor out = Tensor::Uninitialized(t.dtype(), {static_cast<int64_t>(keep.size()), G});
  const size_t row = static_cast<size_t>(G) * DTypeSize(t.dtype());
  for (size_t i = 0; i < keep.size(); ++i) {
    std::memcpy(static_cast<uint8_t*>(out.mutable_data()) + i * row,
                static_cast<const uint8_t*>(t.data()) + static_cast<size_t>(keep[i]) * row, row);
  }
  return out;
}

}  // namespace

Result<std::pair<ModelConfig, std::vector<BrickData>>> CompactRemovedExperts(const ModelConfig& cfg,
                                                                             std::vector<BrickData> bricks) {
  if (!cfg.HasRemovals()) return std::make_pair(cfg, std::move(bricks));
  ModelConfig out = cfg;
  for (int64_t l = 0; l < cfg.n_layer; ++l) {
    out.n_att_experts[static_cast<size_t>(l)] = cfg.KeptExperts(true, l);
    out.n_mlp_experts[static_cast<size_t>(l)] = cfg.KeptExperts(false, l);
  }
  out.att_removed.clear();
  out.mlp_removed.clear();
  for (BrickData& b : bricks) {
    const bool att = b.kind == BrickKind::kAttnRouter || b.kind == BrickKind::kAttnExpert;
    if (b.kind == BrickKind::kAttnExpert || b.kind == BrickKind::kMlpExpert) {
      if (cfg.IsRemoved(att, b.layer, b.index))
        return InvalidArgument("brick " + b.Name() + " is removed by the config but present");
      int shift = 0;
      for (int e = 0; e < b.index; ++e) shift += cfg.IsRemoved(att, b.layer, e) ? 1 : 0;
      b.index -= shift;
    } else if (b.kind == BrickKind::kAttnRouter || b.kind == BrickKind::kMlpRouter) {
      const int64_t rows = (att ? cfg.n_att_experts : cfg.n_mlp_experts).at(static_cast<size_t>(b.layer));
      for (auto& [name, t] : b.tensors) {
        if (name != "w2") continue;
        if (t.rank() != 2 || t.dim(0) != rows)
          return InvalidArgument("router " + b.Name() + ": w2 has not the config's " + std::to_string(rows) + " rows");
        t = SelectRows(t, cfg.KeptExpertIds(att, b.layer));
      }
    }
  }
  return std::make_pair(std::move(out), std::move(bricks));
}

}  // namespace brickrt
