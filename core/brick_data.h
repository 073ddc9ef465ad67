// BrickData: one brick as a plain value — its kind, position in the model and named tensors in
// storage orientation (exactly the checkpoint's, so export and digests are byte-identical).
// Checkpoint readers and the registry produce these; bricks/ assembles a runnable model from them.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace brickrt {

// kLora is a plugin brick (a low-rank delta on one projection of another brick), not part of the base
// model; the others are the model's own parts.
enum class BrickKind { kEmbedding, kNorm, kAttnRouter, kAttnExpert, kMlpRouter, kMlpExpert, kLmHead, kLora };

// "embedding", "norm", "attn_router", "attn_expert", "mlp_router", "mlp_expert", "lm_head", "lora".
const char* BrickKindName(BrickKind kind);
// The inverse of BrickKindName; nullopt for anything else.
std::optional<BrickKind> ParseBrickKind(std::string_view name);

// Which norm a kNorm brick is; stored in BrickData::index.
inline constexpr int kNormFinal = 0;  // ln_f (layer -1)
inline constexpr int kNormAttn = 1;   // L<i>.ln1
inline constexpr int kNormMlp = 2;    // L<i>.ln2

// Tensors of each kind (storage orientation, dtype of the checkpoint):
//   embedding   "weight" [V, D]
//   norm        "weight" [D], "bias" [D]
//   attn_router "w1" [G, D], "b1" [G], "w2" [E_a, G]   (nn.Linear orientation [out, in])
//   mlp_router  "w1" [G, D], "b1" [G], "w2" [E_m, G]
//   attn_expert "wq" [D, A], "wo" [A, D]                (expert orientation [in, out])
//   mlp_expert  "w1" [D, F], "w2" [F, D]
//   lm_head     "weight" [V, D]
//   lora        "a" [r, in], "b" [out, r] (PEFT orientation: delta W[out, in] = alpha / r · B·A),
//               "alpha" F32 [1]; target names the projection, e.g. "L3.mlp.E5.w1"
struct BrickData {
  BrickKind kind = BrickKind::kEmbedding;
  int layer = -1;  // -1 for embedding, ln_f, lm_head (and a lora on lm_head)
  int index = -1;  // expert index within its layer, or the norm slot; -1 otherwise (a lora: its target's)
  // kLora only: the target brick's model-relative name, a '.', and the target tensor's name.
  std::string target;
  std::vector<std::pair<std::string, Tensor>> tensors;

  // Model-relative name: "embed", "L3.ln1", "L3.attn.router", "L3.attn.E5", "L3.mlp.E17", "ln_f",
  // "lm_head"; a lora brick is named by its target ("L3.mlp.E5.w1").
  std::string Name() const;
  // nullptr when absent.
  const Tensor* Find(const std::string& tensor_name) const;
  size_t nbytes() const;
};

}  // namespace brickrt
