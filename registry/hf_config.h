// Hugging Face config.json <-> ModelConfig for ModuleFormer / MoLM checkpoints: what brickrt can run
// is checked here once, so the loader and the bricks never meet an unsupported variant.
#pragma once

#include <string>
#include <string_view>

#include "core/model_config.h"
#include "core/status.h"

namespace brickrt {

// Parses the text of a config.json. `source` names the file in error messages.
// Required keys (the HF constructor defaults differ from MoLM, spec §1.5, so none is guessed):
// n_layer, n_embd, vocab_size, att_hidden, n_head, ffd_hidden, gating_size, k_att, k_mlp,
// n_att_experts, n_mlp_experts. Optional with defaults: layer_norm_epsilon 1e-5, bos/eos_token_id
// 50256, tie_word_embeddings false, torch_dtype "bfloat16", gate_type "mlp", activation_function
// "gelu_new". n_att_experts/n_mlp_experts fill every layer; the loader replaces them with the
// per-layer counts found in the tensors (spec G16). cfg.dtype is torch_dtype; the loader replaces it
// with the dtype actually stored.
// Errors: InvalidArgument (invalid JSON, missing or mistyped key, non-positive size, k > experts),
// Unsupported (model_type other than "moduleformer", gate_type other than "mlp",
// activation_function other than gelu_new/gelu_pytorch_tanh, n_head != 1 or att_hidden != n_embd,
// torch_dtype other than float32/float16/bfloat16).
Result<ModelConfig> ParseHfConfig(std::string_view json_text, const std::string& source = "config.json");

// Reads and parses a config.json file. NotFound when it does not exist.
Result<ModelConfig> ReadHfConfig(const std::string& path);

// A MoLM-style config.json for cfg (pretty-printed, ends with a newline). n_att_experts and
// n_mlp_experts are the maxima over layers (HF code builds every layer with that count; brickrt reads
// the true per-layer counts from tensor shapes).
std::string HfConfigJson(const ModelConfig& cfg);

}  // namespace brickrt
