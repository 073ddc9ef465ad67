// PEFT LoRA adapters (adapter_config.json + adapter_model.safetensors, as `peft` saves them) <-> lora
// bricks (core/brick_data.h) checked against the base model they were trained on. docs/plugins.md.
#pragma once

#include <string>
#include <vector>

#include "core/brick_data.h"
#include "core/model_config.h"
#include "core/status.h"

namespace brickrt {

// Reads dir/adapter_config.json and dir/adapter_model.safetensors and returns one kLora brick per
// adapted projection, validated against `base` (the model the adapter is for).
//
// Keys: "base_model.model." + MODULE + ".lora_A|lora_B" + optional ".<adapter name>" (PEFT drops
// ".default" when it saves; a file must not mix two adapter names) + ".weight". MODULE -> target:
//   transformer.h.<i>.attn.q_proj.experts          -> L<i>.attn.E<e>.wq       in D, out A
//   transformer.h.<i>.attn.q_proj.output_experts   -> L<i>.attn.E<e>.wo       in A, out D
//   transformer.h.<i>.mlpf.experts                 -> L<i>.mlp.E<e>.w1        in D, out F
//   transformer.h.<i>.mlpf.output_experts          -> L<i>.mlp.E<e>.w2        in F, out D
//   lm_head                                        -> lm_head.weight          in D, out V
// The expert modules are ParallelExperts (one [E, in, out] parameter, not nn.Linear), so two forms
// are accepted, and may be mixed across modules:
//   per expert  MODULE.<e>.lora_A.weight [r, in],  MODULE.<e>.lora_B.weight [out, r]
//   stacked     MODULE.lora_A.weight [E, r, in],   MODULE.lora_B.weight [E, out, r]  (E = the layer's
//               expert count; one brick per expert)
// Each brick: "a" [r, in], "b" [out, r] in the file's dtype (BF16/F16/F32, kept as stored), "alpha"
// F32 [1]; layer/index are the target's (-1 for lm_head). The delta is ΔW[out, in] = alpha / r · B·A,
// so the stored alpha is lora_alpha, or lora_alpha·√r when use_rslora (PEFT scales by
// lora_alpha / √r then). rank_pattern / alpha_pattern override r / lora_alpha per module as PEFT does:
// the first key (in file order) that equals the module name (without "base_model.model.") or a
// suffix of it after a '.' wins ("h.3.mlpf.experts"); '.' in a key matches any character, as in
// PEFT's regex, and keys using other regex syntax are refused (Unsupported).
// Order of the result: by layer; attention before MLP; by expert; wq, wo / w1, w2; lm_head last.
//
// Errors, each one line naming the file and the key:
//   NotFound         dir, adapter_config.json or adapter_model.safetensors missing (a pickled
//                    adapter_model.bin alone is named in the message)
//   InvalidArgument  config not a JSON object or a field of the wrong type; a key that is not a
//                    LoRA weight of a known module (named); a layer, expert or shape that disagrees
//                    with `base` (layer >= n_layer, expert >= the layer's count or removed from base,
//                    in/out or E wrong, rank different from r / rank_pattern); two keys for one target;
//                    no LoRA tensors at all
//   Corrupt          a malformed safetensors file; lora_A without lora_B (or the reverse); A and B
//                    ranks disagree; a NaN or infinite value
//   Unsupported      peft_type other than "LORA"; fan_in_fan_out, use_dora, lora_bias true; bias
//                    other than "none"; modules_to_save, layer_replication or trainable_token_indices
//                    set; a regex pattern key; a tensor dtype other than BF16/F16/F32
Result<std::vector<BrickData>> ReadPeftAdapter(const std::string& dir, const ModelConfig& base);

struct PeftWriteOptions {
  // Stacked keys ([E, r, in] / [E, out, r]) for every expert module whose layer has a lora on each of
  // its E experts, all with the same a and b dtypes; per-expert keys for the others (and always for a
  // layer the base removed experts from: the reader would refuse the removed ones' slices).
  bool stacked = false;
  std::string base_model_name;  // adapter_config.json "base_model_name_or_path"; informative only
};

// The inverse of ReadPeftAdapter: writes dir/adapter_config.json and dir/adapter_model.safetensors so
// that ReadPeftAdapter(dir, base) returns `loras` again byte for byte (in its order). The config holds
// peft_type "LORA", r, lora_alpha, target_modules (the dotted module suffixes used, e.g.
// "mlpf.experts"), bias "none", fan_in_fan_out false, task_type "CAUSAL_LM" and base_model_name_or_path;
// one r and one lora_alpha, so every lora must have the same rank and alpha (no rank_pattern is written).
// Keys have no adapter-name segment, as PEFT saves them. `base` is the model the loras are for: it
// gives the expert counts for the stacked form and every lora is checked against it. Creates dir
// (and its parents) when missing.
// Errors, each naming the brick or the path:
//   InvalidArgument  no loras; a brick that is not a lora, or whose target is not a mapped projection
//                    (docs/plugins.md), disagrees with its layer/index, or names a layer, expert or
//                    shape `base` does not have (or an expert it removed); two loras on one target;
//                    ranks or alphas that differ (adapter_config.json holds one r and one lora_alpha);
//                    alpha not F32 [1]; a NaN or infinite value; dir exists and is not an empty directory
//   NotFound         a lora without tensor a, b or alpha
//   IoError          dir cannot be created or a file cannot be written
Status WritePeftAdapter(const std::string& dir, const std::vector<BrickData>& loras, const ModelConfig& base,
                        const PeftWriteOptions& opts = {});

}  // namespace brickrt
