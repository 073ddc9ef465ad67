// config.json parsing/writing for model_type "moduleformer". Only the MoLM shape of the architecture
// (one head per attention expert, identity key/value projections, MLP routers) is accepted.
#include "registry/hf_config.h"

#include "core/file.h"
#include "core/log.h"

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <fstream>
#include <iterator>

#include "core/json.h"

namespace brickrt {
namespace {

class Fields {
 public:
  Fields(const JsonValue& root, const std::string& source) : root_(root), source_(source) {}

  Status Int(const char* key, bool required, int64_t* out) const {
    const JsonValue* v = root_.Find(key);
    if (v == nullptr || v->is_null()) return required ? Missing(key) : Status::Ok();
    const auto i = v->as_int64();
    if (!i) return InvalidArgument(source_ + ": \"" + key + "\": expected an integer, found " + DumpJson(*v));
    *out = *i;
    return Status::Ok();
  }
  Status Positive(const char* key, int64_t* out) const {
    BRICK_RETURN_IF_ERROR(Int(key, true, out));
    if (*out <= 0)
      return InvalidArgument(source_ + ": \"" + key + "\": expected a positive integer, found " + std::to_string(*out));
    return Status::Ok();
  }
  Status String(const char* key, std::string* out) const {
    const JsonValue* v = root_.Find(key);
    if (v == nullptr || v->is_null()) return Status::Ok();  // keep the default
    if (!v->is_string())
      return InvalidArgument(source_ + ": \"" + key + "\": expected a string, found " + DumpJson(*v));
    *out = v->as_string();
    return Status::Ok();
  }
  Status Bool(const char* key, bool* out) const {
    const JsonValue* v = root_.Find(key);
    if (v == nullptr || v->is_null()) return Status::Ok();
    if (!v->is_bool())
      return InvalidArgument(source_ + ": \"" + key + "\": expected true/false, found " + DumpJson(*v));
    *out = v->as_bool();
    return Status::Ok();
  }
  Status Double(const char* key, double* out) const {
    const JsonValue* v = root_.Find(key);
    if (v == nullptr || v->is_null()) return Status::Ok();
    if (!v->is_number())
      return InvalidArgument(source_ + ": \"" + key + "\": expected a number, found " + DumpJson(*v));
    *out = v->as_double();
    return Status::Ok();
  }

 private:
  Status Missing(const char* key) const { return InvalidArgument(source_ + ": missing required key \"" + key + "\""); }
  const JsonValue& root_;
  const std::string& source_;
};

const char* TorchDTypeName(DType t) {
  switch (t) {
    case DType::kF32:
      return "float32";
    case DType::kF16:
      return "float16";
    case DType::kBF16:
      return "bfloat16";
  }
  return "bfloat16";
}

}  // namespace

Result<ModelConfig> ParseHfConfig(std::string_view json_text, const std::string& source) {
  auto parsed = ParseJson(json_text);
  if (!parsed.ok()) return InvalidArgument(source + ": invalid JSON: " + parsed.status().message());
  const JsonValue& root = parsed.value();
  if (!root.is_object()) return InvalidArgument(source + ": expected a JSON object at the top level");
  Fields f(root, source);

  std::string model_type;
  if (root.Find("model_type") == nullptr) return InvalidArgument(source + ": missing required key \"model_type\"");
  BRICK_RETURN_IF_ERROR(f.String("model_type", &model_type));
  if (model_type != "moduleformer")
    return Unsupported(source + ": model_type \"" + model_type + "\" is not supported; brickrt runs \"moduleformer\"");
  std::string gate_type = "mlp", activation = "gelu_new", torch_dtype = "bfloat16";
  BRICK_RETURN_IF_ERROR(f.String("gate_type", &gate_type));
  BRICK_RETURN_IF_ERROR(f.String("activation_function", &activation));
  BRICK_RETURN_IF_ERROR(f.String("torch_dtype", &torch_dtype));
  if (gate_type != "mlp")
    return Unsupported(source + ": gate_type \"" + gate_type + "\" is not supported; expected \"mlp\" (MoLM routers)");
  if (activation != "gelu_new" && activation != "gelu_pytorch_tanh")
    return Unsupported(source + ": activation_function \"" + activation +
                       "\" is not supported; expected \"gelu_new\" or \"gelu_pytorch_tanh\"");

  ModelConfig cfg;
  int64_t k_att = 0, k_mlp = 0, e_att = 0, e_mlp = 0;
  BRICK_RETURN_IF_ERROR(f.Positive("n_layer", &cfg.n_layer));
  BRICK_RETURN_IF_ERROR(f.Positive("n_embd", &cfg.n_embd));
  BRICK_RETURN_IF_ERROR(f.Positive("vocab_size", &cfg.vocab_size));
  BRICK_RETURN_IF_ERROR(f.Positive("att_hidden", &cfg.att_hidden));
  BRICK_RETURN_IF_ERROR(f.Positive("n_head", &cfg.n_head));
  BRICK_RETURN_IF_ERROR(f.Positive("ffd_hidden", &cfg.ffd_hidden));
  BRICK_RETURN_IF_ERROR(f.Positive("gating_size", &cfg.gating_size));
  BRICK_RETURN_IF_ERROR(f.Positive("k_att", &k_att));
  BRICK_RETURN_IF_ERROR(f.Positive("k_mlp", &k_mlp));
  BRICK_RETURN_IF_ERROR(f.Positive("n_att_experts", &e_att));
  BRICK_RETURN_IF_ERROR(f.Positive("n_mlp_experts", &e_mlp));
  if (cfg.n_head != 1 || cfg.att_hidden != cfg.n_embd)
    return Unsupported(source + ": n_head " + std::to_string(cfg.n_head) + ", att_hidden " +
                       std::to_string(cfg.att_hidden) + ", n_embd " + std::to_string(cfg.n_embd) +
                       ": brickrt supports only the MoLM layout n_head = 1 and att_hidden = n_embd "
                       "(identity key/value projections, no k_proj/v_proj weights)");
  if (k_att > e_att || k_mlp > e_mlp)
    return InvalidArgument(source + ": k_att " + std::to_string(k_att) + " / k_mlp " + std::to_string(k_mlp) +
                           " exceed n_att_experts " + std::to_string(e_att) + " / n_mlp_experts " +
                           std::to_string(e_mlp));
  if (cfg.n_layer > 100000 || k_att > 1024 || k_mlp > 1024)
    return InvalidArgument(source + ": n_layer, k_att or k_mlp is implausibly large");
  cfg.k_att = static_cast<int>(k_att);
  cfg.k_mlp = static_cast<int>(k_mlp);
  cfg.n_att_experts.assign(static_cast<size_t>(cfg.n_layer), e_att);
  cfg.n_mlp_experts.assign(static_cast<size_t>(cfg.n_layer), e_mlp);

  double eps = 1e-5;
  BRICK_RETURN_IF_ERROR(f.Double("layer_norm_epsilon", &eps));
  if (!(eps > 0)) return InvalidArgument(source + ": \"layer_norm_epsilon\" must be positive");
  // The HF ModuleFormer code never passes layer_norm_epsilon to its LayerNorms, which use PyTorch's
  // default 1e-5 (spec G10): a checkpoint computes with 1e-5 whatever its config says.
  if (eps != 1e-5) {
    log::Warn("registry", source + ": layer_norm_epsilon " + std::to_string(eps) +
                              " is ignored, as by the reference code; LayerNorms use 1e-5");
  }
  cfg.layer_norm_eps = 1e-5f;
  BRICK_RETURN_IF_ERROR(f.Int("bos_token_id", false, &cfg.bos_token_id));
  BRICK_RETURN_IF_ERROR(f.Int("eos_token_id", false, &cfg.eos_token_id));
  BRICK_RETURN_IF_ERROR(f.Bool("tie_word_embeddings", &cfg.tie_word_embeddings));
  const auto dt = ParseDType(torch_dtype);
  if (!dt)
    return Unsupported(source + ": torch_dtype \"" + torch_dtype +
                       "\" is not supported; expected float32, float16 or bfloat16");
  cfg.dtype = *dt;
  return cfg;
}

Result<ModelConfig> ReadHfConfig(const std::string& path) {
  auto text = ReadFileCapped(path, size_t{1} << 20);  // a config.json is ~1 KB
  if (!text.ok()) {
    if (text.status().code() == StatusCode::kNotFound) return NotFound(path + ": config file not found");
    return text.status();
  }
  return ParseHfConfig(*text, path);
}

std::string HfConfigJson(const ModelConfig& cfg) {
  const auto max_of = [](const std::vector<int64_t>& v) {
    return v.empty() ? int64_t{0} : *std::max_element(v.begin(), v.end());
  };
  const auto I = [](int64_t v) { return JsonValue::Int(v); };
  JsonValue o = JsonValue::MakeObject();
  o.Set("activation_function", JsonValue::String("gelu_new"));
  o.Set("architectures", JsonValue::MakeArray({JsonValue::String("ModuleFormerForCausalLM")}));
  o.Set("att_hidden", I(cfg.att_hidden));
  o.Set("attn_pdrop", I(0));
  o.Set("aux_loss_type", JsonValue::String("mi"));
  o.Set("aux_loss_weight", I(0));
  o.Set("block_size", I(512));
  o.Set("bos_token_id", I(cfg.bos_token_id));
  o.Set("embd_pdrop", I(0));
  o.Set("eos_token_id", I(cfg.eos_token_id));
  o.Set("ffd_hidden", I(cfg.ffd_hidden));
  o.Set("gate_type", JsonValue::String("mlp"));
  o.Set("gating_size", I(cfg.gating_size));
  o.Set("history_length", I(512));
  o.Set("initializer_range", JsonValue::Number(0.02));
  o.Set("k_att", I(cfg.k_att));
  o.Set("k_mlp", I(cfg.k_mlp));
  // The shortest decimal of the float (1e-05), not of its widened double (9.99999974737875e-06).
  char eps[32];
  *std::to_chars(eps, eps + sizeof eps - 1, cfg.layer_norm_eps).ptr = '\0';
  o.Set("layer_norm_epsilon", JsonValue::Number(std::strtod(eps, nullptr)));
  o.Set("model_type", JsonValue::String("moduleformer"));
  o.Set("moe_pdrop", I(0));
  o.Set("n_att_experts", I(max_of(cfg.n_att_experts)));
  o.Set("n_ctx", I(512 * cfg.n_layer));  // history_length * n_layer, as the HF config computes it
  o.Set("n_embd", I(cfg.n_embd));
  o.Set("n_head", I(cfg.n_head));
  o.Set("n_layer", I(cfg.n_layer));
  o.Set("n_mlp_experts", I(max_of(cfg.n_mlp_experts)));
  o.Set("resid_pdrop", I(0));
  o.Set("sample_topk", I(0));
  o.Set("tie_word_embeddings", JsonValue::Bool(cfg.tie_word_embeddings));
  o.Set("torch_dtype", JsonValue::String(TorchDTypeName(cfg.dtype)));
  o.Set("use_cache", JsonValue::Bool(true));
  o.Set("vocab_size", I(cfg.vocab_size));
  return DumpJson(o, 2) + "\n";
}

}  // namespace brickrt
