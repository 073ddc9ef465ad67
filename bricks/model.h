// Model: a runnable ModuleFormer assembled from bricks. Immutable once built; expert bricks are
// shared_ptr so a later swap can replace one without copying the rest.
#pragma once

#include <memory>
#include <vector>

#include "bricks/embedding.h"
#include "bricks/experts.h"
#include "bricks/lm_head.h"
#include "bricks/lora.h"
#include "bricks/norm.h"
#include "bricks/router.h"
#include "core/brick_data.h"
#include "core/model_config.h"
#include "core/status.h"

namespace brickrt {

// Experts are held compactly in ascending original-id order: slot i of `attn` is the router's output
// i and the brick with index attn_ids[i] (ids skip the experts a submodel removed).
struct Layer {
  Norm ln1;
  Router attn_router;
  std::vector<std::shared_ptr<const AttentionExpert>> attn;  // [kept E_a of this layer]
  std::vector<int64_t> attn_ids;
  Norm ln2;
  Router mlp_router;
  std::vector<std::shared_ptr<const MlpExpert>> mlp;  // [kept E_m of this layer]
  std::vector<int64_t> mlp_ids;
  int64_t lora_rank = 0;  // largest LoRA rank among its experts (0: none); sizes the LoRA scratch
};

class Model {
 public:
  // Validates that every brick the config calls for is present exactly once with the right shapes
  // (per-layer expert counts from cfg.n_att_experts / n_mlp_experts, less cfg's removed experts, whose
  // bricks must be absent) and builds the model. Errors
  // name the missing or malformed brick. Takes the bricks by value and drops each one's tensors as
  // soon as it is built, so a caller that moves them in peaks at one copy of the weights plus one
  // brick, not two copies.
  //
  // loras: plugins applied on the fly to the projections they target (expert wq/wo/w1/w2, lm_head
  // weight; see bricks/lora.h). A targeted expert becomes a new expert object that shares the base
  // weights; untargeted experts are untouched. Several loras on one projection sum. Errors (naming
  // the lora): not a lora brick, a malformed target, a target not in the model (layer beyond n_layer,
  // an expert index beyond the layer's count or removed from it), shapes that do not fit.
  static Result<std::shared_ptr<const Model>> Build(const ModelConfig& cfg, std::vector<BrickData> bricks,
                                                    std::vector<LoraAttachment> loras = {});

  const ModelConfig& config() const { return cfg_; }
  const Embedding& embedding() const { return embedding_; }
  const std::vector<Layer>& layers() const { return layers_; }
  const Norm& ln_f() const { return ln_f_; }
  const LmHead& lm_head() const { return lm_head_; }
  // Number of loras attached at Build.
  int64_t lora_count() const { return lora_count_; }
  // The largest LoRA rank attached anywhere (layers and lm head), 0 without: sizes Workspace::lora.
  int64_t MaxLoraRank() const;

  // Bytes of weights one token reads in decode: routers, k_att + k_mlp experts per layer, norms,
  // one embedding row and the whole lm_head (the decode roofline's numerator, without the cache).
  // LoRA bytes (LoraDelta::bytes, packed as streamed) count roughly: the lm head's in full, an expert
  // layer's scaled by k / kept experts (their expected share under uniform routing).
  int64_t ActiveWeightBytesPerToken() const;
  // All weights, the loras' packed bytes included.
  int64_t TotalWeightBytes() const;

 private:
  Status AttachLora(const LoraAttachment& lora);

  int64_t lora_count_ = 0;
  ModelConfig cfg_;
  Embedding embedding_;
  std::vector<Layer> layers_;
  Norm ln_f_;
  LmHead lm_head_;
};

}  // namespace brickrt
