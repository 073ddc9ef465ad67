// ReadPeftAdapter: a PEFT LoRA adapter directory -> lora bricks. The config is checked first, then
// every key is parsed and every shape checked against the base model before any weight is read.
#include "registry/peft_adapter.h"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <map>
#include <optional>
#include <string_view>
#include <tuple>
#include <utility>

#include "core/file.h"
#include "core/json.h"
#include "registry/safetensors.h"

namespace brickrt {
namespace {

constexpr std::string_view kPrefix = "base_model.model.";
constexpr size_t kMaxConfigBytes = size_t{1} << 20;

bool IsDir(const std::string& p) {
  struct stat sb {};
  return ::stat(p.c_str(), &sb) == 0 && S_ISDIR(sb.st_mode);
}
bool Exists(const std::string& p) {
  struct stat sb {};
  return ::stat(p.c_str(), &sb) == 0;
}

// A JSON value for an error message, cut short.
std::string Show(const JsonValue& v) {
  std::string s = DumpJson(v);
  return s.size() > 60 ? s.substr(0, 57) + "..." : s;
}

// ---- adapter_config.json ----

struct LoraConfig {
  int64_t r = 0;
  double alpha = 0;
  bool rslora = false;
  std::vector<std::pair<std::string, int64_t>> rank_pattern;  // file order: the first match wins
  std::vector<std::pair<std::string, double>> alpha_pattern;
};

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

Status ParsePatterns(const std::string& path, const JsonValue& cfg, LoraConfig* out) {
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

Result<LoraConfig> ReadConfig(const std::string& path) {
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

  LoraConfig out;
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

// ---- keys ----

enum class Proj { kWq, kWo, kW1, kW2, kLmHead };

// The target tensor of each Proj, in enum order.
constexpr const char* kProjTensor[] = {"wq", "wo", "w1", "w2", "weight"};
const char* ProjTensor(Proj p) { return kProjTensor[static_cast<int>(p)]; }
bool IsAttn(Proj p) { return p == Proj::kWq || p == Proj::kWo; }

struct ParsedKey {
  Proj proj = Proj::kLmHead;
  int layer = -1;
  std::optional<int64_t> expert;  // the per-expert form; nullopt: stacked (or lm_head)
  std::string module;             // module name without the prefix, e.g. "transformer.h.3.mlpf.experts.5"
  bool is_b = false;
  std::string adapter;  // the adapter-name segment, empty when absent
};

std::optional<int64_t> ParseIndex(std::string_view s) {
  if (s.empty() || s.size() > 9 || (s.size() > 1 && s[0] == '0')) return std::nullopt;
  int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  return v;
}

std::optional<ParsedKey> ParseKey(std::string_view key) {
  if (key.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  std::vector<std::string_view> segs;
  for (std::string_view rest = key.substr(kPrefix.size());;) {
    const size_t dot = rest.find('.');
    segs.push_back(rest.substr(0, dot));
    if (dot == std::string_view::npos) break;
    rest = rest.substr(dot + 1);
  }
  if (std::any_of(segs.begin(), segs.end(), [](std::string_view s) { return s.empty(); })) return std::nullopt;
  const size_t n = segs.size();
  if (n < 3 || segs[n - 1] != "weight") return std::nullopt;
  auto is_lora = [](std::string_view s) { return s == "lora_A" || s == "lora_B"; };
  ParsedKey pk;
  size_t p = n - 2;  // position of lora_A / lora_B
  if (!is_lora(segs[p])) {
    if (n < 4 || !is_lora(segs[n - 3])) return std::nullopt;
    p = n - 3;
    pk.adapter = std::string(segs[n - 2]);
  }
  pk.is_b = segs[p] == "lora_B";
  std::vector<std::string_view> mod(segs.begin(), segs.begin() + static_cast<std::ptrdiff_t>(p));
  for (size_t i = 0; i < mod.size(); ++i) pk.module += (i ? "." : "") + std::string(mod[i]);
  if (mod.size() == 1 && mod[0] == "lm_head") return pk;

  if (mod.size() < 5 || mod[0] != "transformer" || mod[1] != "h") return std::nullopt;
  const std::optional<int64_t> layer = ParseIndex(mod[2]);
  if (!layer) return std::nullopt;
  pk.layer = static_cast<int>(*layer);
  std::vector<std::string_view> tail(mod.begin() + 3, mod.end());
  if (!tail.empty()) {
    if (const std::optional<int64_t> e = ParseIndex(tail.back())) {
      pk.expert = *e;
      tail.pop_back();
    }
  }
  using V = std::vector<std::string_view>;
  if (tail == V{"attn", "q_proj", "experts"})
    pk.proj = Proj::kWq;
  else if (tail == V{"attn", "q_proj", "output_experts"})
    pk.proj = Proj::kWo;
  else if (tail == V{"mlpf", "experts"})
    pk.proj = Proj::kW1;
  else if (tail == V{"mlpf", "output_experts"})
    pk.proj = Proj::kW2;
  else
    return std::nullopt;
  return pk;
}

// ---- validation and reading ----

struct KeyPair {
  ParsedKey module;  // the module's parse (from whichever of A/B came first)
  const StTensorInfo* a = nullptr;
  const StTensorInfo* b = nullptr;
};

// One brick to read: expert e of a pair (slice e of a stacked pair).
struct Job {
  const KeyPair* pair = nullptr;
  int64_t expert = -1;  // -1 for lm_head
  bool stacked = false;
  int64_t r = 0, in = 0, out = 0;
  float alpha = 0;
  std::string target;
};

class AdapterReader {
 public:
  AdapterReader(std::string dir, const ModelConfig& base) : dir_(std::move(dir)), base_(base) {}

  Result<std::vector<BrickData>> Read() {
    if (!IsDir(dir_)) return NotFound(dir_ + ": adapter directory does not exist");
    BRICK_ASSIGN_OR_RETURN(cfg_, ReadConfig(dir_ + "/adapter_config.json"));
    path_ = dir_ + "/adapter_model.safetensors";
    if (!Exists(path_)) {
      const std::string hint =
          Exists(dir_ + "/adapter_model.bin")
              ? " (found adapter_model.bin: save with safe_serialization=True; pickles are not read)"
              : "";
      return NotFound(path_ + ": no such file" + hint);
    }
    BRICK_ASSIGN_OR_RETURN(SafetensorsFile file, SafetensorsFile::Open(path_));
    BRICK_RETURN_IF_ERROR(PairKeys(file));
    std::vector<Job> jobs;
    std::map<std::string, std::string> key_of_target;
    for (const auto& [module, pair] : pairs_) {
      BRICK_RETURN_IF_ERROR(PlanPair(pair, &jobs));
    }
    for (const Job& j : jobs) {
      auto [it, fresh] = key_of_target.emplace(j.target, j.pair->a->name);
      if (!fresh) {
        return InvalidArgument(path_ + ": keys '" + it->second + "' and '" + j.pair->a->name + "' both adapt " +
                               j.target + "; keep one");
      }
    }
    std::stable_sort(jobs.begin(), jobs.end(), [](const Job& x, const Job& y) { return Order(x) < Order(y); });
    std::vector<BrickData> out;
    out.reserve(jobs.size());
    for (const Job& j : jobs) {
      BRICK_ASSIGN_OR_RETURN(BrickData b, ReadJob(file, j));
      out.push_back(std::move(b));
    }
    return out;
  }

 private:
  std::string KeyError(const std::string& key, const std::string& what) const {
    return path_ + ": key '" + key + "': " + what;
  }

  // Groups A and B keys by module; rejects unknown keys, a second adapter name and duplicates.
  Status PairKeys(const SafetensorsFile& file) {
    if (file.tensors().empty()) return InvalidArgument(path_ + ": no tensors (an empty adapter)");
    std::optional<std::string> adapter;
    std::string adapter_key;
    for (const StTensorInfo& t : file.tensors()) {
      std::optional<ParsedKey> pk = ParseKey(t.name);
      if (!pk) {
        return InvalidArgument(KeyError(t.name,
                                        "not a LoRA weight of a module brickrt maps (expected base_model.model."
                                        "MODULE.lora_A|lora_B.weight; MODULE and forms: docs/plugins.md)"));
      }
      if (adapter && *adapter != pk->adapter) {
        auto shown = [](const std::string& a) { return a.empty() ? std::string("(none)") : "'" + a + "'"; };
        return InvalidArgument(KeyError(t.name, "adapter name " + shown(pk->adapter) + " differs from " +
                                                    shown(*adapter) + " in key '" + adapter_key +
                                                    "'; import one adapter at a time"));
      }
      adapter = pk->adapter;
      adapter_key = t.name;
      KeyPair& pair = pairs_[pk->module];
      const StTensorInfo*& slot = pk->is_b ? pair.b : pair.a;
      if (slot != nullptr) return InvalidArgument(KeyError(t.name, "duplicates key '" + slot->name + "'"));
      slot = &t;
      if (pair.module.module.empty()) pair.module = std::move(*pk);
    }
    for (const auto& [module, pair] : pairs_) {
      if (pair.a == nullptr)
        return Corrupt(KeyError(pair.b->name, "has no lora_A partner (" + module + ".lora_A.weight)"));
      if (pair.b == nullptr)
        return Corrupt(KeyError(pair.a->name, "has no lora_B partner (" + module + ".lora_B.weight)"));
    }
    return Status::Ok();
  }

  // Checks one pair against the base model and the config and appends its bricks to jobs.
  Status PlanPair(const KeyPair& pair, std::vector<Job>* jobs) const {
    const ParsedKey& m = pair.module;
    const std::string& a_key = pair.a->name;
    for (const StTensorInfo* t : {pair.a, pair.b}) {
      if (!ToDType(t->dtype)) {
        return Unsupported(
            KeyError(t->name, std::string("dtype ") + StDTypeName(t->dtype) + " is not supported (BF16, F16 or F32)"));
      }
    }
    Job job;
    job.pair = &pair;
    const int64_t D = base_.n_embd, A = base_.att_hidden, F = base_.ffd_hidden, V = base_.vocab_size;
    const int64_t in_out[][2] = {{D, A}, {A, D}, {D, F}, {F, D}, {D, V}};  // by Proj, as the table in the header
    job.in = in_out[static_cast<int>(m.proj)][0];
    job.out = in_out[static_cast<int>(m.proj)][1];
    int64_t experts = 0;  // the layer's expert count (expert modules)
    if (m.proj != Proj::kLmHead) {
      if (m.layer >= base_.n_layer) {
        return InvalidArgument(KeyError(a_key, "layer " + std::to_string(m.layer) + " is beyond the base model's " +
                                                   std::to_string(base_.n_layer) + " layers"));
      }
      const auto& counts = IsAttn(m.proj) ? base_.n_att_experts : base_.n_mlp_experts;
      experts = counts[static_cast<size_t>(m.layer)];
      if (m.expert && *m.expert >= experts) {
        return InvalidArgument(KeyError(a_key, "expert " + std::to_string(*m.expert) + " is beyond layer " +
                                                   std::to_string(m.layer) + "'s " + std::to_string(experts) + " " +
                                                   (IsAttn(m.proj) ? "attention" : "MLP") +
                                                   " experts in the base model"));
      }
    }
    job.stacked = m.proj != Proj::kLmHead && !m.expert;
    const size_t rank = job.stacked ? 3 : 2;
    const std::string want_a =
        std::string(job.stacked ? "[" + std::to_string(experts) + ", r, " : "[r, ") + std::to_string(job.in) + "]";
    const std::string want_b =
        std::string(job.stacked ? "[" + std::to_string(experts) + ", " : "[") + std::to_string(job.out) + ", r]";
    const Shape& sa = pair.a->shape;
    const Shape& sb = pair.b->shape;
    if (sa.size() != rank || sa.back() != job.in || (job.stacked && sa[0] != experts))
      return InvalidArgument(KeyError(a_key, "shape " + ShapeToString(sa) + ", expected " + want_a + " for this base"));
    if (sb.size() != rank || sb[rank - 2] != job.out || (job.stacked && sb[0] != experts)) {
      return InvalidArgument(
          KeyError(pair.b->name, "shape " + ShapeToString(sb) + ", expected " + want_b + " for this base"));
    }
    job.r = sa[rank - 2];
    if (sb[rank - 1] != job.r) {
      return Corrupt(KeyError(pair.b->name, "rank " + std::to_string(sb[rank - 1]) + " disagrees with rank " +
                                                std::to_string(job.r) + " of '" + a_key + "'"));
    }
    const int64_t want_r = PatternValue(cfg_.rank_pattern, m.module, cfg_.r);
    if (job.r != want_r) {
      return InvalidArgument(KeyError(a_key, "rank " + std::to_string(job.r) + ", but adapter_config.json gives r = " +
                                                 std::to_string(want_r) + " for " + m.module));
    }
    const double alpha = PatternValue(cfg_.alpha_pattern, m.module, cfg_.alpha);
    // PEFT scales by alpha / r, or alpha / sqrt(r) with rsLoRA; the brick always means alpha / r.
    job.alpha = static_cast<float>(cfg_.rslora ? alpha * std::sqrt(static_cast<double>(job.r)) : alpha);
    if (!std::isfinite(job.alpha)) return InvalidArgument(KeyError(a_key, "lora_alpha overflows F32"));

    if (m.proj == Proj::kLmHead) {
      job.target = "lm_head.weight";
      jobs->push_back(job);
      return Status::Ok();
    }
    const int64_t first = m.expert ? *m.expert : 0, last = m.expert ? *m.expert + 1 : experts;
    for (int64_t e = first; e < last; ++e) {
      if (base_.IsRemoved(IsAttn(m.proj), m.layer, e)) {
        return InvalidArgument(KeyError(a_key, "expert " + std::to_string(e) + " of layer " + std::to_string(m.layer) +
                                                   " is removed from the base model; import against the full model"));
      }
      job.expert = e;
      job.target = "L" + std::to_string(m.layer) + (IsAttn(m.proj) ? ".attn.E" : ".mlp.E") + std::to_string(e) + "." +
                   ProjTensor(m.proj);
      jobs->push_back(job);
    }
    return Status::Ok();
  }

  // (layer, attention before MLP, expert, projection); lm_head after every layer.
  static std::tuple<int64_t, int, int64_t, int> Order(const Job& j) {
    const ParsedKey& m = j.pair->module;
    if (m.proj == Proj::kLmHead) return {INT64_MAX, 0, 0, 0};
    return {m.layer, IsAttn(m.proj) ? 0 : 1, j.expert, (m.proj == Proj::kWq || m.proj == Proj::kW1) ? 0 : 1};
  }

  Result<Tensor> ReadTensor(const SafetensorsFile& file, const StTensorInfo& info, const Job& j, Shape shape) const {
    Result<Tensor> t = j.stacked ? file.ReadRows(info.name, j.expert, 1) : file.Read(info.name);
    if (!t.ok()) return t.status();
    Tensor out = t->Reshaped(std::move(shape));
    // Widened in blocks: a NaN in an adapter would silently poison every token it touches.
    constexpr size_t kBlock = 4096;
    float buf[kBlock];
    const auto* bytes = static_cast<const uint8_t*>(out.data());
    const size_t n = static_cast<size_t>(out.numel()), esize = DTypeSize(out.dtype());
    for (size_t i = 0; i < n; i += kBlock) {
      const size_t m = std::min(kBlock, n - i);
      ConvertToF32(bytes + i * esize, out.dtype(), m, buf);
      for (size_t k = 0; k < m; ++k) {
        if (!std::isfinite(buf[k])) {
          const std::string where = j.stacked ? " of expert " + std::to_string(j.expert) : "";
          return Corrupt(KeyError(info.name, "element " + std::to_string(i + k) + where + " is NaN or infinite"));
        }
      }
    }
    return out;
  }

  Result<BrickData> ReadJob(const SafetensorsFile& file, const Job& j) const {
    BrickData b;
    b.kind = BrickKind::kLora;
    b.layer = j.pair->module.layer;
    b.index = static_cast<int>(j.expert);
    b.target = j.target;
    BRICK_ASSIGN_OR_RETURN(Tensor a, ReadTensor(file, *j.pair->a, j, {j.r, j.in}));
    BRICK_ASSIGN_OR_RETURN(Tensor bt, ReadTensor(file, *j.pair->b, j, {j.out, j.r}));
    Tensor alpha(DType::kF32, {1});
    alpha.mutable_data_as<float>()[0] = j.alpha;
    b.tensors.emplace_back("a", std::move(a));
    b.tensors.emplace_back("b", std::move(bt));
    b.tensors.emplace_back("alpha", std::move(alpha));
    return b;
  }

  std::string dir_, path_;
  const ModelConfig& base_;
  LoraConfig cfg_;
  std::map<std::string, KeyPair> pairs_;  // by module name
};

}  // namespace

Result<std::vector<BrickData>> ReadPeftAdapter(const std::string& dir, const ModelConfig& base) {
  return AdapterReader(dir, base).Read();
}

}  // namespace brickrt
