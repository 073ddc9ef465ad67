// What a composition costs: parameters in total and per token, and the base model's for comparison.
#include <algorithm>
#include <map>

#include "registry/compose_internal.h"

namespace brickrt::compose_internal {
namespace {

int64_t Params(const BrickRecord& b) {
  int64_t n = 0;
  for (const TensorRecord& t : b.tensors) {
    int64_t e = 1;
    for (int64_t d : t.shape) e *= d;
    n += e;
  }
  return n;
}

}  // namespace

void CountCosts(const std::vector<BrickRecord>& base_bricks, Composition* c) {
  const ModelConfig& cfg = c->config;
  for (const BrickRecord& b : base_bricks) {
    c->base_params_total += Params(b);
    c->base_bytes += b.bytes;
  }
  // Active per token: every shared brick except the embedding table (one row is read), and k of
  // each layer's experts (experts of a layer have equal sizes).
  std::map<std::pair<int, bool>, int64_t> expert_params;  // (layer, attention) -> params of one expert
  for (const BrickRecord& b : c->bricks) {
    const int64_t p = Params(b);
    c->params_total += p;
    if (b.kind == BrickKind::kAttnExpert || b.kind == BrickKind::kMlpExpert) {
      expert_params[{b.layer, b.kind == BrickKind::kAttnExpert}] = p;
    } else if (b.kind == BrickKind::kEmbedding) {
      c->params_active += cfg.n_embd;
    } else {
      c->params_active += p;
    }
  }
  for (const auto& [key, p] : expert_params) c->params_active += p * (key.second ? cfg.k_att : cfg.k_mlp);
  for (const PluginPlan& plan : c->plugins) {
    for (const BrickRecord& b : plan.bricks) {
      c->params_total += Params(b);
      // An expert lora is read when its expert runs: counted at the expert's share k / kept.
      const bool att = b.RelativeName().find(".attn.") != std::string::npos;
      if (b.layer < 0) {
        c->params_active += Params(b);
      } else {
        const int64_t kept = cfg.KeptExperts(att, b.layer);
        c->params_active += Params(b) * (att ? cfg.k_att : cfg.k_mlp) / std::max<int64_t>(1, kept);
      }
    }
  }
}

}  // namespace brickrt::compose_internal
