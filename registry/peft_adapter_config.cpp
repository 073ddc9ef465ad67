// adapter_config.json: parsed into the LoRA options brickrt honours, the others refused with the field
// named; and written for an exported adapter (peft_adapter_write.cpp).
#include "registry/peft_adapter_config.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <optional>
#include <string_view>

#include "core/file.h"
#include "core/json.h"

namespace brickrt {
namespace {

constexpr size_t kMaxConfigBytes = size_t{1} << 20;

// A JSON value for an error message, cut short.
std::string Show(const JsonValue& v) {
  std::string s = DumpJson(v);
  return s.size() > 60 ? s.substr(0, 57) + "..." : s;
}

// PEFT matches pattern keys as regexes re.match(r"(.*\.)?(KEY)$", module). Keys made of name
// characters and '.' (matching any character) are matched exactly that way; anything else is refused.
bool PatternKeyOk(const std::string& key) {
  if (key.empty()) return false;
  return std::all_of(key.begin(), key.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '-' || c == '.';
  });
}

bool MatchesAt(std::string_view pattern, std::string_view s) {
  if (pattern.size() != s.size()) return false;
  for (size_t i = 0; i < s.size(); ++i)
    if (pattern[i] != '.' && pattern[i] != s[i]) return false;
  return true;
}

bool PatternMatches(std::string_view pattern, std::string_view module) {
  if (MatchesAt(pattern, module)) return true;
  for (size_t i = 1; i < module.size(); ++i)
    if (module[i - 1] == '.' && MatchesAt(pattern, module.substr(i))) return true;
  return false;
}

template <typename T>
T PatternValue(const std::vector<std::pair<std::string, T>>& patterns, const std::string& module, T fallback) {
  for (const auto& [key, value] : patterns)
    if (PatternMatches(key, module)) return value;
  return fallback;
}

// A member that is present and not null; nullptr otherwise.
const JsonValue* Member(const JsonValue& obj, std::string_view key) {
  const JsonValue* v = obj.Find(key);
  return v == nullptr || v->is_null() ? nullptr : v;
}

bool IsEmptyContainer(const JsonValue& v) {
  return (v.is_array() && v.as_array().empty()) || (v.is_object() && v.as_object().empty());
}

Result<bool> OptionalBool(const std::string& path, const JsonValue& cfg, const char* key) {
  const JsonValue* v = Member(cfg, key);
  if (v == nullptr) return false;
  if (!v->is_bool()) return InvalidArgument(path + ": \"" + key + "\" must be true or false, found " + Show(*v));
  return v->as_bool();
}

Status ParsePatterns(const std::string& path, const JsonValue& cfg, PeftLoraConfig* out) {
  for (const char* field : {"rank_pattern", "alpha_pattern"}) {
    const JsonValue* v = Member(cfg, field);
    if (v == nullptr) continue;
    if (!v->is_object()) return InvalidArgument(path + ": \"" + field + "\" must be an object, found " + Show(*v));
    const bool rank = std::string_view(field) == "rank_pattern";
    for (const auto& [key, value] : v->as_object()) {
      if (!PatternKeyOk(key)) {
        return Unsupported(path + ": \"" + field + "\" key '" + key +
                           "' is a regular expression; brickrt supports module names and name suffixes only");
      }
      if (rank) {
        const std::optional<int64_t> r = value.as_int64();
        if (!r || *r < 1)
          return InvalidArgument(path + ": \"" + field + "\" '" + key + "' must be a positive integer, found " +
                                 Show(value));
        out->rank_pattern.emplace_back(key, *r);
      } else {
        if (!value.is_number() || !std::isfinite(value.as_double()))
          return InvalidArgument(path + ": \"" + field + "\" '" + key + "' must be a number, found " + Show(value));
        out->alpha_pattern.emplace_back(key, value.as_double());
      }
    }
  }
  return Status::Ok();
}

// Refuses the options that make an adapter more than LoRA deltas on the mapped projections.
Status CheckUnsupported(const std::string& path, const JsonValue& cfg) {
  BRICK_ASSIGN_OR_RETURN(const bool fifo, OptionalBool(path, cfg, "fan_in_fan_out"));
  if (fifo)
    return Unsupported(path + ": \"fan_in_fan_out\" is true (transposed Conv1D weights); only false is supported");
  BRICK_ASSIGN_OR_RETURN(const bool dora, OptionalBool(path, cfg, "use_dora"));
  if (dora) return Unsupported(path + ": \"use_dora\" is true; DoRA adapters are not supported, only plain LoRA");
  BRICK_ASSIGN_OR_RETURN(const bool lora_bias, OptionalBool(path, cfg, "lora_bias"));
  if (lora_bias) return Unsupported(path + ": \"lora_bias\" is true; LoRA biases are not supported");
  if (const JsonValue* bias = Member(cfg, "bias")) {
    if (!bias->is_string()) return InvalidArgument(path + ": \"bias\" must be a string, found " + Show(*bias));
    if (bias->as_string() != "none") {
      return Unsupported(path + ": \"bias\" is \"" + bias->as_string() +
                         "\"; adapters that train biases are not supported (only \"none\")");
    }
  }
  for (const char* key : {"modules_to_save", "layer_replication", "trainable_token_indices"}) {
    const JsonValue* v = Member(cfg, key);
    if (v != nullptr && !IsEmptyContainer(*v)) {
      return Unsupported(path + ": \"" + key + "\" is " + Show(*v) +
                         "; only LoRA deltas can be imported, not replaced or added modules");
    }
  }
  return Status::Ok();
}

JsonValue AlphaJson(float alpha) {
  const double d = alpha;
  if (std::trunc(d) == d && std::fabs(d) < 1e15) return JsonValue::Int(static_cast<int64_t>(d));
  return JsonValue::Number(d);  // shortest round-trip digits: the reader gets this float back
}

}  // namespace

int64_t PeftLoraConfig::RankOf(const std::string& module) const { return PatternValue(rank_pattern, module, r); }
double PeftLoraConfig::AlphaOf(const std::string& module) const { return PatternValue(alpha_pattern, module, alpha); }

Result<PeftLoraConfig> ReadPeftLoraConfig(const std::string& path) {
  auto text = ReadFileCapped(path, kMaxConfigBytes);
  if (!text.ok()) {
    if (text.status().code() == StatusCode::kNotFound)
      return NotFound(path + ": no such file (a PEFT adapter directory holds adapter_config.json)");
    return text.status();
  }
  auto parsed = ParseJson(*text);
  if (!parsed.ok()) return InvalidArgument(path + ": not valid JSON: " + parsed.status().message());
  const JsonValue& cfg = *parsed;
  if (!cfg.is_object()) return InvalidArgument(path + ": expected a JSON object, found " + Show(cfg));

  const JsonValue* type = Member(cfg, "peft_type");
  if (type == nullptr) return InvalidArgument(path + ": no \"peft_type\" (not a PEFT adapter config?)");
  if (!type->is_string()) return InvalidArgument(path + ": \"peft_type\" must be a string, found " + Show(*type));
  if (type->as_string() != "LORA") {
    return Unsupported(path + ": \"peft_type\" is \"" + type->as_string() +
                       "\"; only LoRA adapters (\"LORA\") can be imported");
  }
  BRICK_RETURN_IF_ERROR(CheckUnsupported(path, cfg));

  PeftLoraConfig out;
  const JsonValue* r = Member(cfg, "r");
  const std::optional<int64_t> rv = r == nullptr ? std::nullopt : r->as_int64();
  if (!rv || *rv < 1)
    return InvalidArgument(path + ": \"r\" must be a positive integer, found " + (r ? Show(*r) : "nothing"));
  out.r = *rv;
  const JsonValue* alpha = Member(cfg, "lora_alpha");
  if (alpha == nullptr || !alpha->is_number() || !std::isfinite(alpha->as_double()))
    return InvalidArgument(path + ": \"lora_alpha\" must be a number, found " + (alpha ? Show(*alpha) : "nothing"));
  out.alpha = alpha->as_double();
  BRICK_ASSIGN_OR_RETURN(out.rslora, OptionalBool(path, cfg, "use_rslora"));
  BRICK_RETURN_IF_ERROR(ParsePatterns(path, cfg, &out));
  return out;
}

std::string PeftLoraConfigJson(int64_t r, float alpha, const std::set<std::string>& target_modules,
                               const std::string& base_model_name) {
  JsonValue cfg = JsonValue::MakeObject();
  cfg.Set("peft_type", JsonValue::String("LORA"));
  cfg.Set("base_model_name_or_path", JsonValue::String(base_model_name));
  cfg.Set("task_type", JsonValue::String("CAUSAL_LM"));
  cfg.Set("r", JsonValue::Int(r));
  cfg.Set("lora_alpha", AlphaJson(alpha));
  cfg.Set("lora_dropout", JsonValue::Number(0.0));
  JsonValue targets = JsonValue::MakeArray();
  for (const std::string& m : target_modules) targets.Append(JsonValue::String(m));
  cfg.Set("target_modules", std::move(targets));
  cfg.Set("bias", JsonValue::String("none"));
  cfg.Set("fan_in_fan_out", JsonValue::Bool(false));
  cfg.Set("use_rslora", JsonValue::Bool(false));
  cfg.Set("use_dora", JsonValue::Bool(false));
  cfg.Set("modules_to_save", JsonValue());
  cfg.Set("inference_mode", JsonValue::Bool(true));
  return DumpJson(cfg, 2) + "\n";
}

}  // namespace brickrt
