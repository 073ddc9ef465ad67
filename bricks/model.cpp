// Model assembly: index the bricks by (kind, layer, index), check completeness, build each brick,
// then attach the loras to the projections they target.
#include "bricks/model.h"

#include <algorithm>
#include <map>
#include <set>
#include <tuple>

namespace brickrt {
namespace {

using Key = std::tuple<int, int, int>;  // kind, layer, index
Key KeyOf(BrickKind kind, int layer, int index) { return {static_cast<int>(kind), layer, index}; }

}  // namespace

Result<std::shared_ptr<const Model>> Model::Build(const ModelConfig& cfg, std::vector<BrickData> bricks,
                                                  std::vector<LoraAttachment> loras) {
  if (cfg.n_layer <= 0 || cfg.n_embd <= 0 || cfg.vocab_size <= 0)
    return InvalidArgument("model config: n_layer, n_embd and vocab_size must be positive");
  if (cfg.n_head != 1 || cfg.att_hidden != cfg.n_embd)
    return Unsupported("model config: brickrt supports n_head == 1 and att_hidden == n_embd (identity key/value maps)");
  if (static_cast<int64_t>(cfg.n_att_experts.size()) != cfg.n_layer ||
      static_cast<int64_t>(cfg.n_mlp_experts.size()) != cfg.n_layer)
    return InvalidArgument("model config: per-layer expert counts must have n_layer entries");
  for (const auto* removed : {&cfg.att_removed, &cfg.mlp_removed}) {
    if (!removed->empty() && static_cast<int64_t>(removed->size()) != cfg.n_layer)
      return InvalidArgument("model config: removed-expert lists must be empty or have n_layer entries");
  }

  std::map<Key, BrickData*> by_key;
  for (BrickData& b : bricks) {
    if (b.kind == BrickKind::kLora)
      return InvalidArgument("brick " + b.Name() + " is a lora plugin: pass it in Build's loras, not as a model brick");
    if (!by_key.emplace(KeyOf(b.kind, b.layer, b.index), &b).second)
      return InvalidArgument("brick " + b.Name() + " appears twice");
  }
  std::set<Key> used;
  auto find = [&](BrickKind kind, int layer, int index) -> Result<BrickData*> {
    used.insert(KeyOf(kind, layer, index));
    auto it = by_key.find(KeyOf(kind, layer, index));
    if (it == by_key.end()) {
      BrickData probe;
      probe.kind = kind;
      probe.layer = layer;
      probe.index = index;
      return NotFound("brick " + probe.Name() + " (" + BrickKindName(kind) + ") is missing");
    }
    return it->second;
  };

  auto m = std::make_shared<Model>();
  m->cfg_ = cfg;
  const float eps = cfg.layer_norm_eps;
  // Each brick's raw tensors are dropped once its runnable form exists (packed copies or shared
  // references live on in the model).
  auto release = [](BrickData* b) { b->tensors.clear(); };
  BRICK_ASSIGN_OR_RETURN(BrickData* embed, find(BrickKind::kEmbedding, -1, -1));
  BRICK_ASSIGN_OR_RETURN(m->embedding_, Embedding::FromData(*embed, cfg.vocab_size, cfg.n_embd));

  for (int l = 0; l < cfg.n_layer; ++l) {
    Layer layer;
    const int64_t ea = cfg.n_att_experts[l], em = cfg.n_mlp_experts[l];
    layer.attn_ids = cfg.KeptExpertIds(/*attention=*/true, l);
    layer.mlp_ids = cfg.KeptExpertIds(/*attention=*/false, l);
    const auto ka = static_cast<int64_t>(layer.attn_ids.size()), km = static_cast<int64_t>(layer.mlp_ids.size());
    if (cfg.k_att < 1 || cfg.k_att > ka || cfg.k_mlp < 1 || cfg.k_mlp > km) {
      return InvalidArgument("layer " + std::to_string(l) + ": top-k (k_att " + std::to_string(cfg.k_att) + ", k_mlp " +
                             std::to_string(cfg.k_mlp) + ") must be between 1 and the layer's kept expert count (" +
                             std::to_string(ka) + " attention, " + std::to_string(km) + " MLP)");
    }
    BRICK_ASSIGN_OR_RETURN(BrickData* ln1, find(BrickKind::kNorm, l, kNormAttn));
    BRICK_ASSIGN_OR_RETURN(layer.ln1, Norm::FromData(*ln1, cfg.n_embd, eps));
    release(ln1);
    BRICK_ASSIGN_OR_RETURN(BrickData* ar, find(BrickKind::kAttnRouter, l, -1));
    BRICK_ASSIGN_OR_RETURN(layer.attn_router, Router::FromData(*ar, cfg.n_embd, cfg.gating_size, ea, layer.attn_ids));
    release(ar);
    for (int64_t e : layer.attn_ids) {
      BRICK_ASSIGN_OR_RETURN(BrickData* b, find(BrickKind::kAttnExpert, l, static_cast<int>(e)));
      BRICK_ASSIGN_OR_RETURN(auto expert, AttentionExpert::FromData(*b, cfg));
      layer.attn.push_back(std::move(expert));
      release(b);
    }
    BRICK_ASSIGN_OR_RETURN(BrickData* ln2, find(BrickKind::kNorm, l, kNormMlp));
    BRICK_ASSIGN_OR_RETURN(layer.ln2, Norm::FromData(*ln2, cfg.n_embd, eps));
    release(ln2);
    BRICK_ASSIGN_OR_RETURN(BrickData* mr, find(BrickKind::kMlpRouter, l, -1));
    BRICK_ASSIGN_OR_RETURN(layer.mlp_router, Router::FromData(*mr, cfg.n_embd, cfg.gating_size, em, layer.mlp_ids));
    release(mr);
    for (int64_t e : layer.mlp_ids) {
      BRICK_ASSIGN_OR_RETURN(BrickData* b, find(BrickKind::kMlpExpert, l, static_cast<int>(e)));
      BRICK_ASSIGN_OR_RETURN(auto expert, MlpExpert::FromData(*b, cfg));
      layer.mlp.push_back(std::move(expert));
      release(b);
    }
    m->layers_.push_back(std::move(layer));
  }
  BRICK_ASSIGN_OR_RETURN(BrickData* lnf, find(BrickKind::kNorm, -1, kNormFinal));
  BRICK_ASSIGN_OR_RETURN(m->ln_f_, Norm::FromData(*lnf, cfg.n_embd, eps));
  auto head = by_key.find(KeyOf(BrickKind::kLmHead, -1, -1));
  if (head == by_key.end() && !cfg.tie_word_embeddings) return NotFound("brick lm_head (lm_head) is missing");
  const BrickData& head_brick = head != by_key.end() ? *head->second : *embed;
  BRICK_ASSIGN_OR_RETURN(m->lm_head_, LmHead::FromData(head_brick, cfg.vocab_size, cfg.n_embd));
  // A brick the config does not call for (a layer or expert index beyond it) means the config and
  // the bricks disagree: refuse rather than silently run a different model.
  used.insert(KeyOf(BrickKind::kLmHead, -1, -1));
  for (const auto& [key, b] : by_key) {
    if (!used.count(key)) {
      return InvalidArgument("brick " + b->Name() + " (" + BrickKindName(b->kind) +
                             ") is not part of the model the config describes (" + std::to_string(cfg.n_layer) +
                             " layers; per-layer expert counts from the config)");
    }
  }
  bricks.clear();
  for (LoraAttachment& lora : loras) {
    BRICK_RETURN_IF_ERROR(m->AttachLora(lora));
    lora.brick.tensors.clear();  // packed now
  }
  return std::shared_ptr<const Model>(std::move(m));
}

Status Model::AttachLora(const LoraAttachment& lora) {
  BRICK_ASSIGN_OR_RETURN(const LoraTarget t, LoraTargetOf(lora.brick));
  ++lora_count_;
  if (t.kind == BrickKind::kLmHead) {
    BRICK_ASSIGN_OR_RETURN(lm_head_, lm_head_.WithLora(lora.brick, lora.scale));
    return Status::Ok();
  }
  const std::string where = "lora " + lora.brick.target + ": ";
  if (t.layer >= cfg_.n_layer)
    return NotFound(where + "the model has no layer " + std::to_string(t.layer) + " (it has " +
                    std::to_string(cfg_.n_layer) + ")");
  Layer& layer = layers_[static_cast<size_t>(t.layer)];
  const bool attn = t.kind == BrickKind::kAttnExpert;
  const std::vector<int64_t>& ids = attn ? layer.attn_ids : layer.mlp_ids;
  const auto it = std::find(ids.begin(), ids.end(), t.index);
  if (it == ids.end()) {
    return NotFound(where + "expert " + std::to_string(t.index) + " is not in layer " + std::to_string(t.layer) +
                    " of this model (the layer has " +
                    std::to_string(attn ? cfg_.n_att_experts[t.layer] : cfg_.n_mlp_experts[t.layer]) + " experts, " +
                    std::to_string(ids.size()) + " kept)");
  }
  const auto slot = static_cast<size_t>(it - ids.begin());
  if (attn) {
    BRICK_ASSIGN_OR_RETURN(layer.attn[slot], layer.attn[slot]->WithLora(t.tensor, lora.brick, lora.scale));
    layer.lora_rank = std::max(layer.lora_rank, layer.attn[slot]->lora_rank());
  } else {
    BRICK_ASSIGN_OR_RETURN(layer.mlp[slot], layer.mlp[slot]->WithLora(t.tensor, lora.brick, lora.scale));
    layer.lora_rank = std::max(layer.lora_rank, layer.mlp[slot]->lora_rank());
  }
  return Status::Ok();
}

int64_t Model::MaxLoraRank() const {
  int64_t r = brickrt::MaxLoraRank(lm_head_.lora());
  for (const Layer& l : layers_) r = std::max(r, l.lora_rank);
  return r;
}

int64_t Model::ActiveWeightBytesPerToken() const {
  const int64_t es = static_cast<int64_t>(DTypeSize(cfg_.dtype));
  const int64_t D = cfg_.n_embd, A = cfg_.att_hidden, F = cfg_.ffd_hidden, G = cfg_.gating_size;
  int64_t bytes = D * es + D * cfg_.vocab_size * es + 2 * D * 4;  // embedding row, lm_head, ln_f
  for (int64_t l = 0; l < cfg_.n_layer; ++l) {
    const int64_t ea = cfg_.KeptExperts(true, l), em = cfg_.KeptExperts(false, l);
    bytes += 4 * D * 4;                                         // two norms (F32)
    bytes += (D * G + G * ea + D * G + G * em) * es + 2 * G * 4;  // routers
    bytes += cfg_.k_att * 2 * D * A * es + cfg_.k_mlp * 2 * D * F * es;
  }
  for (const Layer& layer : layers_) {
    int64_t attn = 0, mlp = 0;
    for (const auto& e : layer.attn) attn += e->lora_bytes();
    for (const auto& e : layer.mlp) mlp += e->lora_bytes();
    bytes += attn * cfg_.k_att / static_cast<int64_t>(layer.attn.size()) +
             mlp * cfg_.k_mlp / static_cast<int64_t>(layer.mlp.size());
  }
  return bytes + LoraBytes(lm_head_.lora());
}

int64_t Model::TotalWeightBytes() const {
  const int64_t es = static_cast<int64_t>(DTypeSize(cfg_.dtype));
  const int64_t D = cfg_.n_embd, A = cfg_.att_hidden, F = cfg_.ffd_hidden, G = cfg_.gating_size;
  int64_t bytes = 2 * cfg_.vocab_size * D * es + 2 * D * 4;
  for (int64_t l = 0; l < cfg_.n_layer; ++l) {
    const int64_t ea = cfg_.KeptExperts(true, l), em = cfg_.KeptExperts(false, l);
    bytes += 4 * D * 4 + (2 * D * G + G * (ea + em)) * es + 2 * G * 4;
    bytes += ea * 2 * D * A * es + em * 2 * D * F * es;
  }
  for (const Layer& layer : layers_) {
    for (const auto& e : layer.attn) bytes += e->lora_bytes();
    for (const auto& e : layer.mlp) bytes += e->lora_bytes();
  }
  return bytes + LoraBytes(lm_head_.lora());
}

}  // namespace brickrt
