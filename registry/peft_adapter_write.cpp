// WritePeftAdapter: lora bricks -> a PEFT LoRA adapter directory, the inverse of ReadPeftAdapter's key
// mapping (peft_adapter.cpp). Every brick is checked against the base first; nothing is written on error.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string_view>
#include <system_error>
#include <tuple>

#include "core/json.h"
#include "registry/peft_adapter.h"
#include "registry/safetensors.h"

namespace brickrt {
namespace {

enum class Proj { kWq, kWo, kW1, kW2, kLmHead };

// By Proj: the module after "transformer.h.<i>." (the whole module for the lm head); the table of
// ReadPeftAdapter's key parser, read the other way.
constexpr const char* kModule[] = {"attn.q_proj.experts", "attn.q_proj.output_experts", "mlpf.experts",
                                   "mlpf.output_experts", "lm_head"};
// adapter_config.json "target_modules": PEFT matches these as dotted suffixes of module names.
constexpr const char* kTargetModule[] = {"q_proj.experts", "q_proj.output_experts", "mlpf.experts",
                                         "mlpf.output_experts", "lm_head"};
bool IsAttn(Proj p) { return p == Proj::kWq || p == Proj::kWo; }

struct Target {
  Proj proj = Proj::kLmHead;
  int64_t layer = -1, expert = -1;
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

// "L3.mlp.E5.w1" / "L0.attn.E2.wo" / "lm_head.weight"; nullopt for anything else.
std::optional<Target> ParseTarget(std::string_view s) {
  if (s == "lm_head.weight") return Target{};
  std::vector<std::string_view> segs;
  for (;;) {
    const size_t dot = s.find('.');
    segs.push_back(s.substr(0, dot));
    if (dot == std::string_view::npos) break;
    s = s.substr(dot + 1);
  }
  if (segs.size() != 4 || segs[0].substr(0, 1) != "L" || segs[2].substr(0, 1) != "E") return std::nullopt;
  const std::optional<int64_t> layer = ParseIndex(segs[0].substr(1)), expert = ParseIndex(segs[2].substr(1));
  if (!layer || !expert) return std::nullopt;
  Target t{Proj::kLmHead, *layer, *expert};
  if (segs[1] == "attn" && segs[3] == "wq")
    t.proj = Proj::kWq;
  else if (segs[1] == "attn" && segs[3] == "wo")
    t.proj = Proj::kWo;
  else if (segs[1] == "mlp" && segs[3] == "w1")
    t.proj = Proj::kW1;
  else if (segs[1] == "mlp" && segs[3] == "w2")
    t.proj = Proj::kW2;
  else
    return std::nullopt;
  return t;
}

// "base_model.model." + module (+ ".<e>" per expert), without ".lora_A.weight".
std::string KeyStem(const Target& t, bool per_expert) {
  if (t.proj == Proj::kLmHead) return "base_model.model.lm_head";
  return "base_model.model.transformer.h." + std::to_string(t.layer) + "." + kModule[static_cast<int>(t.proj)] +
         (per_expert ? "." + std::to_string(t.expert) : "");
}

bool AllFinite(const Tensor& t) {
  constexpr size_t kBlock = 4096;
  float buf[kBlock];
  const auto* bytes = static_cast<const uint8_t*>(t.data());
  const size_t n = static_cast<size_t>(t.numel()), esize = DTypeSize(t.dtype());
  for (size_t i = 0; i < n; i += kBlock) {
    const size_t m = std::min(kBlock, n - i);
    ConvertToF32(bytes + i * esize, t.dtype(), m, buf);
    for (size_t k = 0; k < m; ++k)
      if (!std::isfinite(buf[k])) return false;
  }
  return true;
}

struct Checked {
  const BrickData* brick = nullptr;
  Target t;
  const Tensor* a = nullptr;  // [r, in]
  const Tensor* b = nullptr;  // [out, r]
  float alpha = 0;
};

// Checks one brick against the base model; the message names the brick.
Result<Checked> Check(const BrickData& br, const ModelConfig& base) {
  const std::string name = "lora " + (br.target.empty() ? "(no target)" : br.target);
  auto bad = [&](const std::string& what) { return InvalidArgument(name + ": " + what); };
  if (br.kind != BrickKind::kLora) return bad(std::string("is a ") + BrickKindName(br.kind) + " brick, not a lora");
  Checked c;
  c.brick = &br;
  const std::optional<Target> t = ParseTarget(br.target);
  if (!t) {
    return bad(
        "not a projection a PEFT adapter can adapt (L<i>.attn.E<e>.wq|wo, L<i>.mlp.E<e>.w1|w2, lm_head.weight; "
        "docs/plugins.md)");
  }
  c.t = *t;
  if (br.layer != t->layer || br.index != t->expert) {
    return bad("layer " + std::to_string(br.layer) + " / index " + std::to_string(br.index) +
               " disagree with the target's " + std::to_string(t->layer) + " / " + std::to_string(t->expert));
  }
  const int64_t D = base.n_embd, A = base.att_hidden, F = base.ffd_hidden, V = base.vocab_size;
  const int64_t in_out[][2] = {{D, A}, {A, D}, {D, F}, {F, D}, {D, V}};  // by Proj
  const int64_t in = in_out[static_cast<int>(t->proj)][0], out = in_out[static_cast<int>(t->proj)][1];
  if (t->proj != Proj::kLmHead) {
    if (t->layer >= base.n_layer)
      return bad("layer " + std::to_string(t->layer) + " is beyond the base's " + std::to_string(base.n_layer));
    const auto& counts = IsAttn(t->proj) ? base.n_att_experts : base.n_mlp_experts;
    const int64_t experts = counts[static_cast<size_t>(t->layer)];
    if (t->expert >= experts)
      return bad("expert " + std::to_string(t->expert) + " is beyond the layer's " + std::to_string(experts));
    if (base.IsRemoved(IsAttn(t->proj), t->layer, t->expert)) return bad("its expert is removed from the base");
  }
  c.a = br.Find("a");
  c.b = br.Find("b");
  const Tensor* alpha = br.Find("alpha");
  if (c.a == nullptr || c.b == nullptr || alpha == nullptr) return bad("needs tensors a, b and alpha");
  if (c.a->shape().size() != 2 || c.a->dim(1) != in || c.b->shape().size() != 2 || c.b->dim(0) != out ||
      c.b->dim(1) != c.a->dim(0) || c.a->dim(0) < 1) {
    return bad("a " + ShapeToString(c.a->shape()) + ", b " + ShapeToString(c.b->shape()) + "; the base needs a [r, " +
               std::to_string(in) + "], b [" + std::to_string(out) + ", r]");
  }
  if (alpha->dtype() != DType::kF32 || alpha->shape() != Shape{1}) return bad("alpha must be F32 [1]");
  c.alpha = alpha->data_as<float>()[0];
  if (!std::isfinite(c.alpha)) return bad("alpha is not finite");
  if (!AllFinite(*c.a) || !AllFinite(*c.b)) return bad("a or b holds a NaN or infinite value");
  return c;
}

// ReadPeftAdapter's order: by layer, attention before MLP, by expert, wq/w1 before wo/w2, lm_head last.
std::tuple<int64_t, int, int64_t, int> Order(const Target& t) {
  if (t.proj == Proj::kLmHead) return {INT64_MAX, 0, 0, 0};
  return {t.layer, IsAttn(t.proj) ? 0 : 1, t.expert, (t.proj == Proj::kWq || t.proj == Proj::kW1) ? 0 : 1};
}

Status PrepareDir(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::file_status st = fs::status(dir, ec);
  if (fs::exists(st)) {
    if (!fs::is_directory(st)) return InvalidArgument(dir + ": exists and is not a directory");
    if (!fs::is_empty(dir, ec) || ec)
      return InvalidArgument(dir + ": directory is not empty; write the adapter to a new or empty directory");
    return Status::Ok();
  }
  if (!fs::create_directories(dir, ec) || ec)
    return IoError(dir + ": cannot create directory: " + (ec ? ec.message() : "unknown error"));
  return Status::Ok();
}

JsonValue AlphaJson(float alpha) {
  const double d = alpha;
  if (std::trunc(d) == d && std::fabs(d) < 1e15) return JsonValue::Int(static_cast<int64_t>(d));
  return JsonValue::Number(d);  // shortest round-trip digits: the reader gets this float back
}

}  // namespace

Status WritePeftAdapter(const std::string& dir, const std::vector<BrickData>& loras, const ModelConfig& base,
                        const PeftWriteOptions& opts) {
  if (loras.empty()) return InvalidArgument(dir + ": no loras to write (an adapter needs at least one)");
  std::vector<Checked> all;
  all.reserve(loras.size());
  std::set<std::string> seen;
  for (const BrickData& br : loras) {
    BRICK_ASSIGN_OR_RETURN(Checked c, Check(br, base));
    if (!seen.insert(br.target).second) return InvalidArgument("lora " + br.target + ": two loras adapt it; keep one");
    const Checked& first = all.empty() ? c : all.front();
    if (c.a->dim(0) != first.a->dim(0) || c.alpha != first.alpha) {
      return InvalidArgument(
          "lora " + br.target + ": rank " + std::to_string(c.a->dim(0)) + ", alpha " + std::to_string(c.alpha) +
          " differ from lora " + first.brick->target + "'s rank " + std::to_string(first.a->dim(0)) + ", alpha " +
          std::to_string(first.alpha) +
          "; adapter_config.json holds one r and one lora_alpha, so write them as separate adapters");
    }
    all.push_back(c);
  }
  std::stable_sort(all.begin(), all.end(), [](const Checked& x, const Checked& y) { return Order(x.t) < Order(y.t); });

  // Expert modules (layer, proj) -> their loras, by expert.
  std::map<std::pair<int64_t, Proj>, std::vector<const Checked*>> modules;
  for (const Checked& c : all)
    if (c.t.proj != Proj::kLmHead) modules[{c.t.layer, c.t.proj}].push_back(&c);
  auto stackable = [&](const Checked& c) {
    if (!opts.stacked || c.t.proj == Proj::kLmHead) return false;
    const std::vector<const Checked*>& m = modules.at({c.t.layer, c.t.proj});
    const auto& counts = IsAttn(c.t.proj) ? base.n_att_experts : base.n_mlp_experts;
    // Every expert present (so none removed); a stacked tensor has one dtype.
    return static_cast<int64_t>(m.size()) == counts[static_cast<size_t>(c.t.layer)] &&
           std::all_of(m.begin(), m.end(), [&](const Checked* x) {
             return x->a->dtype() == m[0]->a->dtype() && x->b->dtype() == m[0]->b->dtype();
           });
  };

  std::vector<StWriteTensor> tensors;
  std::set<std::string> module_names;
  for (const Checked& c : all) {
    module_names.insert(kTargetModule[static_cast<int>(c.t.proj)]);
    const int64_t r = c.a->dim(0), in = c.a->dim(1), out = c.b->dim(0);
    if (!stackable(c)) {
      const std::string stem = KeyStem(c.t, /*per_expert=*/c.t.proj != Proj::kLmHead);
      tensors.push_back({stem + ".lora_A.weight", FromDType(c.a->dtype()), {r, in}, {{c.a->data(), c.a->nbytes()}}});
      tensors.push_back({stem + ".lora_B.weight", FromDType(c.b->dtype()), {out, r}, {{c.b->data(), c.b->nbytes()}}});
      continue;
    }
    if (c.t.expert != 0) continue;  // the module was written with its expert 0 (sorted by expert)
    const std::vector<const Checked*>& m = modules.at({c.t.layer, c.t.proj});
    const int64_t E = static_cast<int64_t>(m.size());
    StWriteTensor ta{KeyStem(c.t, false) + ".lora_A.weight", FromDType(c.a->dtype()), {E, r, in}, {}};
    StWriteTensor tb{KeyStem(c.t, false) + ".lora_B.weight", FromDType(c.b->dtype()), {E, out, r}, {}};
    for (const Checked* x : m) {  // one part per expert: no copy of the weights
      ta.parts.emplace_back(x->a->data(), x->a->nbytes());
      tb.parts.emplace_back(x->b->data(), x->b->nbytes());
    }
    tensors.push_back(std::move(ta));
    tensors.push_back(std::move(tb));
  }

  JsonValue cfg = JsonValue::MakeObject();
  cfg.Set("peft_type", JsonValue::String("LORA"));
  cfg.Set("base_model_name_or_path", JsonValue::String(opts.base_model_name));
  cfg.Set("task_type", JsonValue::String("CAUSAL_LM"));
  cfg.Set("r", JsonValue::Int(all.front().a->dim(0)));
  cfg.Set("lora_alpha", AlphaJson(all.front().alpha));
  cfg.Set("lora_dropout", JsonValue::Number(0.0));
  JsonValue targets = JsonValue::MakeArray();
  for (const std::string& m : module_names) targets.Append(JsonValue::String(m));
  cfg.Set("target_modules", std::move(targets));
  cfg.Set("bias", JsonValue::String("none"));
  cfg.Set("fan_in_fan_out", JsonValue::Bool(false));
  cfg.Set("use_rslora", JsonValue::Bool(false));
  cfg.Set("use_dora", JsonValue::Bool(false));
  cfg.Set("modules_to_save", JsonValue());
  cfg.Set("inference_mode", JsonValue::Bool(true));

  BRICK_RETURN_IF_ERROR(PrepareDir(dir));
  // The weights first: a directory with a config is a complete adapter.
  BRICK_RETURN_IF_ERROR(WriteSafetensors(dir + "/adapter_model.safetensors", tensors, {{"format", "pt"}}));
  return WriteFileAtomic(dir + "/adapter_config.json", DumpJson(cfg, 2) + "\n");
}

}  // namespace brickrt
