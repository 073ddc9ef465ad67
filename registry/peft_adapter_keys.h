// Internal to registry/peft_adapter*.cpp: the names PEFT gives a ModuleFormer adapter's tensors and
// modules, mapped to and from lora targets (core/lora_target.h). Not a public API.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/lora_target.h"

namespace brickrt {

// One parsed adapter tensor key (the table is in registry/peft_adapter.h).
struct PeftKey {
  LoraProj proj = LoraProj::kLmHead;
  int layer = -1;               // -1 for the lm head
  std::optional<int> expert;    // the per-expert form; nullopt: stacked (or the lm head)
  std::string module;           // without "base_model.model.", e.g. "transformer.h.3.mlpf.experts.5"
  bool is_b = false;            // lora_B (else lora_A)
  std::string adapter;          // the adapter-name segment, empty when absent

  // The target of expert e of this key's module (the lm head: e is ignored).
  LoraTarget Target(int e) const { return MakeLoraTarget(proj, layer, e); }
};

// Parses "base_model.model." + MODULE + ".lora_A|lora_B" + optional ".<adapter name>" + ".weight";
// nullopt for anything that is not a LoRA weight of a module brickrt maps. Layer and expert indices
// follow the target grammar (ParseLoraIndex: canonical decimal).
std::optional<PeftKey> ParsePeftKey(std::string_view key);

// The key of target t's lora_A (b: lora_B) weight, without an adapter-name segment, as PEFT saves it.
// stacked: the layer's module, one [E, ...] tensor for all its experts (ignored for the lm head).
std::string PeftKeyOf(const LoraTarget& t, bool b, bool stacked);

// The adapter_config.json "target_modules" entry of a projection (PEFT matches it as a dotted suffix
// of module names): "q_proj.experts", "q_proj.output_experts", "mlpf.experts", "mlpf.output_experts",
// "lm_head".
const char* PeftTargetModule(LoraProj p);

}  // namespace brickrt
