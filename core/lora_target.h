// LoRA targets: the one grammar naming the projection a lora adapts ("L3.mlp.E5.w1", "lm_head.weight"),
// each projection's features and storage orientation for a model config, and the checks of a lora brick.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/brick_data.h"
#include "core/model_config.h"
#include "core/status.h"
#include "core/tensor.h"

namespace brickrt {

// The projections a lora may adapt. Enum order is the order within one expert (wq before wo, w1 before
// w2); tables indexed by it (the PEFT module names) rely on it.
enum class LoraProj { kWq, kWo, kW1, kW2, kLmHead };
inline constexpr LoraProj kAllLoraProjs[] = {LoraProj::kWq, LoraProj::kWo, LoraProj::kW1, LoraProj::kW2,
                                             LoraProj::kLmHead};

// A projection a lora may target: "L<l>.attn.E<i>.wq|wo", "L<l>.mlp.E<i>.w1|w2" or "lm_head.weight".
// Built by ParseLoraTarget or MakeLoraTarget, which keep the fields consistent.
struct LoraTarget {
  BrickKind kind = BrickKind::kLmHead;  // kAttnExpert, kMlpExpert or kLmHead
  int layer = -1;                       // -1 for the lm head
  int index = -1;                       // the expert; -1 for the lm head
  std::string tensor = "weight";        // "wq", "wo", "w1", "w2" or "weight"

  LoraProj proj() const;
  bool attention() const { return kind == BrickKind::kAttnExpert; }
  bool lm_head() const { return kind == BrickKind::kLmHead; }
};

// The target of projection p of expert `index` in `layer` (both ignored, and -1, for kLmHead).
LoraTarget MakeLoraTarget(LoraProj p, int layer = -1, int index = -1);

// "L3.mlp.E5.w1", "L0.attn.E2.wo", "lm_head.weight": the inverse of ParseLoraTarget.
std::string FormatLoraTarget(const LoraTarget& t);

// A layer or expert index as written in targets (and in PEFT keys): decimal, at most kMaxLoraIndexDigits
// digits, no sign and no leading zero (canonical form only, so that equal names mean equal targets).
// nullopt for anything else.
inline constexpr int kMaxLoraIndexDigits = 6;
std::optional<int> ParseLoraIndex(std::string_view s);

// Parses a target string. Errors: InvalidArgument naming the string (quoted) and the accepted forms.
Result<LoraTarget> ParseLoraTarget(std::string_view target);

// Checks that `lora` is a kLora brick and parses its target; the brick's layer/index fields must agree
// with the target (they are the target brick's). Errors: InvalidArgument ("brick NAME (KIND) is not a
// lora", a bad target, or layer/index that "disagree with its target").
Result<LoraTarget> LoraTargetOf(const BrickData& lora);

// The canonical order of targets (ReadPeftAdapter's, MakeRandomLoras'): by layer, attention before
// MLP, by expert, wq/w1 before wo/w2, the lm head last.
bool LoraTargetBefore(const LoraTarget& x, const LoraTarget& y);

// Input and output features of a projection in a model with config cfg (A = att_hidden, F = ffd_hidden):
//   wq D -> A, wo A -> D, w1 D -> F, w2 F -> D, lm_head D -> V.
// A lora on it has "a" [r, in] and "b" [out, r].
struct LoraFeatures {
  int64_t in = 0;
  int64_t out = 0;
};
LoraFeatures LoraFeaturesOf(LoraProj p, const ModelConfig& cfg);

// Whether the base tensor of the projection is stored [in, out] (expert tensors, y = x·W) rather than
// [out, in] (the lm head, an nn.Linear: y = x·Wᵀ).
inline bool LoraBaseStoredInOut(LoraProj p) { return p != LoraProj::kLmHead; }

// Checks that the model with config cfg has the target's layer and expert and did not remove the
// expert (a submodel). The lm head always exists. Errors: InvalidArgument with a message that does not
// name the target (callers prefix it with the lora or the key): "layer 3 is beyond the base model's 2
// layers", "expert 7 is beyond layer 1's 4 MLP experts in the base model", "expert 2 of layer 1 is
// removed from the base model". REQUIRES: cfg's expert lists have n_layer entries.
Status CheckLoraTargetIn(const LoraTarget& t, const ModelConfig& cfg);

// The rank of lora brick `lora` after checking its tensors against a projection of `in` input and `out`
// output features: "a" [r, in] with r >= 1, "b" [out, r], "alpha" one finite value (any dtype).
// Errors, one line naming the lora's target and the expected vs found shape: NotFound for a missing
// tensor, InvalidArgument for a wrong shape or a non-finite alpha.
Result<int64_t> CheckLoraTensors(const BrickData& lora, int64_t in, int64_t out);

// The lora's alpha widened to F32. REQUIRES: CheckLoraTensors(lora, ...) succeeded.
float LoraAlpha(const BrickData& lora);

// The index of the first NaN or infinite element of a BF16/F16/F32 tensor; nullopt when every element
// is finite. Adapter readers and writers use it: a NaN in a lora silently poisons every token it touches.
std::optional<int64_t> FirstNonFinite(const Tensor& t);

}  // namespace brickrt
