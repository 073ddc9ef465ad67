// PEFT tensor keys <-> lora targets: one module table, read one way by ReadPeftAdapter and the other way
// by WritePeftAdapter.
#include "registry/peft_adapter_keys.h"


namespace brickrt {
namespace {

constexpr std::string_view kPrefix = "base_model.model.";
constexpr std::string_view kLayers = "transformer.h.";

// By LoraProj: the module after "transformer.h.<l>." (the whole module for the lm head). The expert
// modules are ParallelExperts: one [E, in, out] parameter, adapted per expert (".<e>") or stacked.
constexpr const char* kModule[] = {"attn.q_proj.experts", "attn.q_proj.output_experts", "mlpf.experts",
                                   "mlpf.output_experts", "lm_head"};
constexpr const char* kTargetModule[] = {"q_proj.experts", "q_proj.output_experts", "mlpf.experts",
                                         "mlpf.output_experts", "lm_head"};

}  // namespace

std::optional<PeftKey> ParsePeftKey(std::string_view key) {
  constexpr std::string_view kWeight = ".weight";
  if (!key.starts_with(kPrefix) || !key.ends_with(kWeight)) return std::nullopt;
  // MODULE.lora_A|lora_B[.ADAPTER], no empty segment anywhere.
  std::string_view rest = key.substr(kPrefix.size(), key.size() - kPrefix.size() - kWeight.size());
  if (rest.empty() || rest.front() == '.' || rest.back() == '.' || rest.find("..") != std::string_view::npos)
    return std::nullopt;
  auto is_lora = [](std::string_view s) { return s == "lora_A" || s == "lora_B"; };
  PeftKey pk;
  size_t dot = rest.rfind('.');
  if (dot != std::string_view::npos && !is_lora(rest.substr(dot + 1))) {
    pk.adapter = std::string(rest.substr(dot + 1));
    rest = rest.substr(0, dot);
    dot = rest.rfind('.');
  }
  if (dot == std::string_view::npos || !is_lora(rest.substr(dot + 1))) return std::nullopt;
  pk.is_b = rest.substr(dot + 1) == "lora_B";
  pk.module = std::string(rest.substr(0, dot));
  if (pk.module == kModule[static_cast<size_t>(LoraProj::kLmHead)]) return pk;

  // transformer.h.<l>.MODULE[.<e>]
  std::string_view m = pk.module;
  if (!m.starts_with(kLayers)) return std::nullopt;
  m.remove_prefix(kLayers.size());
  const size_t layer_end = m.find('.');
  const std::optional<int> layer = ParseLoraIndex(m.substr(0, layer_end));
  if (!layer || layer_end == std::string_view::npos) return std::nullopt;
  pk.layer = *layer;
  m.remove_prefix(layer_end + 1);
  if (const size_t last = m.rfind('.'); last != std::string_view::npos) {
    if (const std::optional<int> e = ParseLoraIndex(m.substr(last + 1))) {
      pk.expert = *e;
      m = m.substr(0, last);
    }
  }
  for (LoraProj proj : {LoraProj::kWq, LoraProj::kWo, LoraProj::kW1, LoraProj::kW2}) {
    if (m == kModule[static_cast<size_t>(proj)]) {
      pk.proj = proj;
      return pk;
    }
  }
  return std::nullopt;
}

std::string PeftKeyOf(const LoraTarget& t, bool b, bool stacked) {
  const LoraProj p = t.proj();
  std::string key(kPrefix);
  if (p != LoraProj::kLmHead) key += std::string(kLayers) + std::to_string(t.layer) + ".";
  key += kModule[static_cast<size_t>(p)];
  if (p != LoraProj::kLmHead && !stacked) key += "." + std::to_string(t.index);
  return key + (b ? ".lora_B.weight" : ".lora_A.weight");
}

const char* PeftTargetModule(LoraProj p) { return kTargetModule[static_cast<size_t>(p)]; }

}  // namespace brickrt
