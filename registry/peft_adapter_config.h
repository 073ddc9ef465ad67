// Internal to registry/peft_adapter*.cpp: adapter_config.json, read into the LoRA options brickrt
// honours (refusing the ones it cannot) and written back for an exported adapter. Not a public API.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"

namespace brickrt {

// The LoRA options of a PEFT adapter config.
struct PeftLoraConfig {
  int64_t r = 0;
  double alpha = 0;  // lora_alpha
  bool rslora = false;
  std::vector<std::pair<std::string, int64_t>> rank_pattern;  // file order: the first match wins
  std::vector<std::pair<std::string, double>> alpha_pattern;

  // r / lora_alpha for a module (its name without "base_model.model."), after rank_pattern /
  // alpha_pattern: the first key that equals the module or a suffix of it after a '.' wins, '.' in a
  // key matching any character (PEFT's regex re.match(r"(.*\.)?(KEY)$", module)).
  int64_t RankOf(const std::string& module) const;
  double AlphaOf(const std::string& module) const;
};

// Reads and checks path (an adapter_config.json). Errors, one line naming the file: NotFound (missing),
// InvalidArgument (not a JSON object, a field of the wrong type, r or lora_alpha missing), Unsupported
// (peft_type other than "LORA"; fan_in_fan_out, use_dora, lora_bias true; bias other than "none";
// modules_to_save, layer_replication or trainable_token_indices set; a regex pattern key).
Result<PeftLoraConfig> ReadPeftLoraConfig(const std::string& path);

// The adapter_config.json text for a plain LoRA adapter: peft_type "LORA", r, lora_alpha (an integer
// when it is one, else the shortest digits that read back as the same float), target_modules (sorted),
// bias "none", fan_in_fan_out false, task_type "CAUSAL_LM", base_model_name_or_path; indented, with a
// final newline.
std::string PeftLoraConfigJson(int64_t r, float alpha, const std::set<std::string>& target_modules,
                               const std::string& base_model_name);

}  // namespace brickrt
