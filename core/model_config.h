// ModelConfig: the architecture of a ModuleFormer model as plain values. Expert counts are per layer
// because pruned and grown models differ layer by layer (spec G16).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace brickrt {

struct ModelConfig {
  int64_t n_layer = 0;
  int64_t n_embd = 0;       // D
  int64_t vocab_size = 0;   // V (not padded)
  int64_t att_hidden = 0;   // A: per-expert query/output width; brickrt requires A == D, n_head == 1
  int64_t n_head = 1;
  int64_t ffd_hidden = 0;   // F: per-expert MLP width
  int64_t gating_size = 0;  // G: router hidden width
  int k_att = 0;            // top-k attention experts per token
  int k_mlp = 0;            // top-k MLP experts per token
  std::vector<int64_t> n_att_experts;  // per layer, size n_layer
  std::vector<int64_t> n_mlp_experts;  // per layer, size n_layer
  float layer_norm_eps = 1e-5f;
  int64_t bos_token_id = 50256;
  int64_t eos_token_id = 50256;
  bool tie_word_embeddings = false;
  DType dtype = DType::kBF16;  // storage dtype of the weights
  // Experts removed from a submodel (issue #4): per layer, sorted distinct original indices; either
  // empty (nothing removed anywhere) or of size n_layer. The layer's router brick keeps its rows for
  // them and they are dropped when the router is loaded, so a removed expert's logit leaves the
  // softmax: exactly what a checkpoint with those experts deleted computes. The kept expert bricks
  // keep their original indices, so a submodel pins the base model's bricks unchanged.
  std::vector<std::vector<int64_t>> att_removed;
  std::vector<std::vector<int64_t>> mlp_removed;

  int64_t head_dim() const { return att_hidden / n_head; }
  bool IsRemoved(bool attention, int64_t layer, int64_t expert) const;
  // Experts the layer runs: the router's count minus the removed ones.
  int64_t KeptExperts(bool attention, int64_t layer) const;
  // The kept experts' original indices, ascending.
  std::vector<int64_t> KeptExpertIds(bool attention, int64_t layer) const;
  bool HasRemovals() const;
};

}  // namespace brickrt
