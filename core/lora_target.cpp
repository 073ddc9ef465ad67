// LoRA target grammar, features and brick checks: the single definition that bricks/ (attaching and
// merging) and registry/ (PEFT import/export, random test loras) share.
#include "core/lora_target.h"

#include <algorithm>
#include <cmath>
#include <tuple>
#include <utility>

namespace brickrt {
namespace {

// By LoraProj.
constexpr const char* kProjTensor[] = {"wq", "wo", "w1", "w2", "weight"};
constexpr BrickKind kProjKind[] = {BrickKind::kAttnExpert, BrickKind::kAttnExpert, BrickKind::kMlpExpert,
                                   BrickKind::kMlpExpert, BrickKind::kLmHead};
constexpr std::string_view kLmHeadTarget = "lm_head.weight";

size_t Idx(LoraProj p) { return static_cast<size_t>(p); }

// "L3.mlp.E5" -> {"L3", "mlp", "E5"}; empty segments are kept (and then fail to parse).
std::vector<std::string_view> SplitDots(std::string_view s) {
  std::vector<std::string_view> out;
  for (;;) {
    const size_t dot = s.find('.');
    out.push_back(s.substr(0, dot));
    if (dot == std::string_view::npos) return out;
    s.remove_prefix(dot + 1);
  }
}

// "L3" with letter 'L' -> 3.
std::optional<int> PrefixedIndex(std::string_view seg, char letter) {
  if (seg.empty() || seg[0] != letter) return std::nullopt;
  return ParseLoraIndex(seg.substr(1));
}

}  // namespace

LoraProj LoraTarget::proj() const {
  for (LoraProj p : kAllLoraProjs)
    if (kProjKind[Idx(p)] == kind && tensor == kProjTensor[Idx(p)]) return p;
  return LoraProj::kLmHead;  // unreachable for a target made by ParseLoraTarget / MakeLoraTarget
}

LoraTarget MakeLoraTarget(LoraProj p, int layer, int index) {
  LoraTarget t;
  t.kind = kProjKind[Idx(p)];
  t.tensor = kProjTensor[Idx(p)];
  if (p != LoraProj::kLmHead) {
    t.layer = layer;
    t.index = index;
  }
  return t;
}

std::string FormatLoraTarget(const LoraTarget& t) {
  if (t.lm_head()) return std::string(kLmHeadTarget);
  return "L" + std::to_string(t.layer) + (t.attention() ? ".attn.E" : ".mlp.E") + std::to_string(t.index) + "." +
         t.tensor;
}

std::optional<int> ParseLoraIndex(std::string_view s) {
  if (s.empty() || s.size() > static_cast<size_t>(kMaxLoraIndexDigits) || (s.size() > 1 && s[0] == '0'))
    return std::nullopt;
  int v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  return v;
}

Result<LoraTarget> ParseLoraTarget(std::string_view target) {
  if (target == kLmHeadTarget) return MakeLoraTarget(LoraProj::kLmHead);
  const std::vector<std::string_view> segs = SplitDots(target);
  const std::optional<int> layer = segs.size() == 4 ? PrefixedIndex(segs[0], 'L') : std::nullopt;
  const std::optional<int> index = segs.size() == 4 ? PrefixedIndex(segs[2], 'E') : std::nullopt;
  for (LoraProj p : {LoraProj::kWq, LoraProj::kWo, LoraProj::kW1, LoraProj::kW2}) {
    const std::string_view group = kProjKind[Idx(p)] == BrickKind::kAttnExpert ? "attn" : "mlp";
    if (layer && index && segs[1] == group && segs[3] == kProjTensor[Idx(p)]) return MakeLoraTarget(p, *layer, *index);
  }
  return InvalidArgument("lora target '" + std::string(target) +
                         "' is not a projection: expected L<layer>.attn.E<i>.wq|wo, L<layer>.mlp.E<i>.w1|w2 or "
                         "lm_head.weight");
}

Result<LoraTarget> LoraTargetOf(const BrickData& lora) {
  if (lora.kind != BrickKind::kLora)
    return InvalidArgument("brick " + lora.Name() + " (" + BrickKindName(lora.kind) + ") is not a lora");
  BRICK_ASSIGN_OR_RETURN(LoraTarget t, ParseLoraTarget(lora.target));
  if (lora.layer != t.layer || lora.index != t.index) {
    return InvalidArgument("lora " + lora.target + ": its layer/index fields (" + std::to_string(lora.layer) + ", " +
                           std::to_string(lora.index) + ") disagree with its target (" + std::to_string(t.layer) +
                           ", " + std::to_string(t.index) + ")");
  }
  return t;
}

bool LoraTargetBefore(const LoraTarget& x, const LoraTarget& y) {
  auto key = [](const LoraTarget& t) {
    if (t.lm_head()) return std::tuple(1, 0, 0, 0, 0);
    return std::tuple(0, t.layer, t.attention() ? 0 : 1, t.index, static_cast<int>(t.proj()));
  };
  return key(x) < key(y);
}

LoraFeatures LoraFeaturesOf(LoraProj p, const ModelConfig& cfg) {
  const int64_t D = cfg.n_embd, A = cfg.att_hidden, F = cfg.ffd_hidden, V = cfg.vocab_size;
  switch (p) {
    case LoraProj::kWq: return {D, A};
    case LoraProj::kWo: return {A, D};
    case LoraProj::kW1: return {D, F};
    case LoraProj::kW2: return {F, D};
    case LoraProj::kLmHead: return {D, V};
  }
  return {};
}

Status CheckLoraTargetIn(const LoraTarget& t, const ModelConfig& cfg) {
  if (t.lm_head()) return Status::Ok();
  if (t.layer < 0 || t.layer >= cfg.n_layer) {
    return InvalidArgument("layer " + std::to_string(t.layer) + " is beyond the base model's " +
                           std::to_string(cfg.n_layer) + " layers");
  }
  const bool attn = t.attention();
  const int64_t experts = (attn ? cfg.n_att_experts : cfg.n_mlp_experts)[static_cast<size_t>(t.layer)];
  if (t.index < 0 || t.index >= experts) {
    return InvalidArgument("expert " + std::to_string(t.index) + " is beyond layer " + std::to_string(t.layer) +
                           "'s " + std::to_string(experts) + (attn ? " attention" : " MLP") +
                           " experts in the base model");
  }
  if (cfg.IsRemoved(attn, t.layer, t.index)) {
    return InvalidArgument("expert " + std::to_string(t.index) + " of layer " + std::to_string(t.layer) +
                           " is removed from the base model");
  }
  return Status::Ok();
}

Result<int64_t> CheckLoraTensors(const BrickData& lora, int64_t in, int64_t out) {
  const std::string name = "lora " + lora.Name();
  const Tensor* a = lora.Find("a");
  const Tensor* b = lora.Find("b");
  const Tensor* alpha = lora.Find("alpha");
  for (const auto& [t, n] : {std::pair{a, "a"}, std::pair{b, "b"}, std::pair{alpha, "alpha"}}) {
    if (t == nullptr) return NotFound(name + ": missing tensor '" + n + "'");
  }
  if (a->rank() != 2 || a->dim(0) < 1 || a->dim(1) != in) {
    return InvalidArgument(name + ": tensor 'a' has shape " + ShapeToString(a->shape()) + ", expected [r, " +
                           std::to_string(in) + "] with r >= 1 (the projection has " + std::to_string(in) +
                           " input features)");
  }
  const int64_t r = a->dim(0);
  if (b->shape() != Shape{out, r}) {
    return InvalidArgument(name + ": tensor 'b' has shape " + ShapeToString(b->shape()) + ", expected " +
                           ShapeToString({out, r}) + " ([out, r], r = " + std::to_string(r) + " from 'a')");
  }
  if (alpha->numel() != 1)
    return InvalidArgument(name + ": tensor 'alpha' has shape " + ShapeToString(alpha->shape()) + ", expected [1]");
  if (!std::isfinite(LoraAlpha(lora))) return InvalidArgument(name + ": alpha is not finite");
  return r;
}

float LoraAlpha(const BrickData& lora) {
  const Tensor& alpha = *lora.Find("alpha");
  float value = 0;
  ConvertToF32(alpha.data(), alpha.dtype(), 1, &value);
  return value;
}

std::optional<int64_t> FirstNonFinite(const Tensor& t) {
  constexpr size_t kBlock = 4096;  // widened in blocks: no F32 copy of a large tensor
  float buf[kBlock];
  const auto* bytes = static_cast<const uint8_t*>(t.data());
  const size_t n = static_cast<size_t>(t.numel()), esize = DTypeSize(t.dtype());
  for (size_t i = 0; i < n; i += kBlock) {
    const size_t m = std::min(kBlock, n - i);
    ConvertToF32(bytes + i * esize, t.dtype(), m, buf);
    for (size_t k = 0; k < m; ++k)
      if (!std::isfinite(buf[k])) return static_cast<int64_t>(i + k);
  }
  return std::nullopt;
}

}  // namespace brickrt
