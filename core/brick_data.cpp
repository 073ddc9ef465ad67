// BrickData naming and lookup.
#include "core/brick_data.h"

namespace brickrt {

const char* BrickKindName(BrickKind kind) {
  switch (kind) {
    case BrickKind::kEmbedding: return "embedding";
    case BrickKind::kNorm: return "norm";
    case BrickKind::kAttnRouter: return "attn_router";
    case BrickKind::kAttnExpert: return "attn_expert";
    case BrickKind::kMlpRouter: return "mlp_router";
    case BrickKind::kMlpExpert: return "mlp_expert";
    case BrickKind::kLmHead: return "lm_head";
    case BrickKind::kLora: return "lora";
  }
  return "?";
}

std::optional<BrickKind> ParseBrickKind(std::string_view name) {
  for (BrickKind k : {BrickKind::kEmbedding, BrickKind::kNorm, BrickKind::kAttnRouter, BrickKind::kAttnExpert,
                      BrickKind::kMlpRouter, BrickKind::kMlpExpert, BrickKind::kLmHead, BrickKind::kLora}) {
    if (name == BrickKindName(k)) return k;
  }
  return std::nullopt;
}

std::string BrickData::Name() const {
  const std::string l = "L" + std::to_string(layer);
  switch (kind) {
    case BrickKind::kEmbedding: return "embed";
    case BrickKind::kLmHead: return "lm_head";
    case BrickKind::kNorm:
      if (index == kNormFinal) return "ln_f";
      return l + (index == kNormAttn ? ".ln1" : ".ln2");
    case BrickKind::kAttnRouter: return l + ".attn.router";
    case BrickKind::kMlpRouter: return l + ".mlp.router";
    case BrickKind::kAttnExpert: return l + ".attn.E" + std::to_string(index);
    case BrickKind::kMlpExpert: return l + ".mlp.E" + std::to_string(index);
    case BrickKind::kLora: return target;
  }
  return "?";
}

const Tensor* BrickData::Find(const std::string& tensor_name) const {
  for (const auto& [n, t] : tensors)
    if (n == tensor_name) return &t;
  return nullptr;
}

size_t BrickData::nbytes() const {
  size_t n = 0;
  for (const auto& [name, t] : tensors) n += t.nbytes();
  return n;
}

}  // namespace brickrt
