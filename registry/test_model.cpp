// Random model generation: splitmix64-seeded xoshiro256** streams, Irwin-Hall normals, written
// straight into each tensor's storage dtype in chunks (fast enough for ~1 GB benchmark models).
#include "registry/test_model.h"

#include <algorithm>
#include <cmath>
#include <string_view>

#include "core/glob.h"
#include "core/lora_target.h"
#include "core/rng.h"
#include "registry/safetensors.h"

namespace brickrt {
namespace {

// Fills a new tensor with mean + stddev * N(0, 1).
Tensor RandomTensor(Rng& rng, DType dtype, Shape shape, float mean, float stddev) {
  Tensor t(dtype, std::move(shape));
  constexpr size_t kChunk = 4096;
  float buf[kChunk];
  const size_t n = static_cast<size_t>(t.numel());
  auto* out = static_cast<uint8_t*>(t.mutable_data());
  for (size_t i = 0; i < n; i += kChunk) {
    const size_t m = std::min(kChunk, n - i);
    for (size_t j = 0; j < m; ++j) buf[j] = mean + stddev * rng.Normal();
    ConvertFromF32(buf, m, dtype, out + i * DTypeSize(dtype));
  }
  return t;
}

uint64_t BrickSeed(uint64_t seed, BrickKind kind, int layer, int index) {
  uint64_t s = seed;
  uint64_t h = SplitMix64(&s);
  h ^= (static_cast<uint64_t>(kind) + 1) * 0x100000001b3ull;
  h ^= static_cast<uint64_t>(static_cast<uint32_t>(layer + 1)) << 20;
  h ^= static_cast<uint64_t>(static_cast<uint32_t>(index + 1)) << 40;
  return SplitMix64(&h);
}

float InvSqrt(int64_t n) { return 1.0f / std::sqrt(static_cast<float>(n)); }

// A lora's stream: several loras share (layer, index) (wq and wo of one expert), so the target name
// (FNV-1a) picks the stream.
uint64_t LoraSeed(uint64_t seed, const std::string& target) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (char c : target) h = (h ^ static_cast<uint8_t>(c)) * 0x100000001b3ull;
  uint64_t s = seed ^ BrickSeed(seed, BrickKind::kLora, -1, -1);
  s ^= SplitMix64(&h);
  return SplitMix64(&s);
}

// Every target of `base` in the canonical order (LoraTargetBefore), skipping removed experts.
std::vector<LoraTarget> AllLoraTargets(const ModelConfig& base) {
  std::vector<LoraTarget> out;
  for (int l = 0; l < base.n_layer; ++l) {
    for (const LoraProj p : {LoraProj::kWq, LoraProj::kWo, LoraProj::kW1, LoraProj::kW2}) {
      const bool attn = MakeLoraTarget(p).attention();
      const int64_t E = (attn ? base.n_att_experts : base.n_mlp_experts)[static_cast<size_t>(l)];
      for (int e = 0; e < E; ++e)
        if (!base.IsRemoved(attn, l, e)) out.push_back(MakeLoraTarget(p, l, e));
    }
  }
  out.push_back(MakeLoraTarget(LoraProj::kLmHead));
  std::sort(out.begin(), out.end(), LoraTargetBefore);
  return out;
}

}  // namespace

Result<std::pair<ModelConfig, std::vector<BrickData>>> MakeRandomModel(const TestModelOptions& o) {
  if (o.layers < 1 || o.d_model < 1 || o.ffd_hidden < 1 || o.gating_size < 1 || o.vocab < 1 || o.k_att < 1 ||
      o.k_mlp < 1)
    return InvalidArgument("MakeRandomModel: layers, sizes and k must be positive");
  ModelConfig cfg;
  cfg.n_layer = o.layers;
  cfg.n_embd = cfg.att_hidden = o.d_model;
  cfg.n_head = 1;
  cfg.vocab_size = o.vocab;
  cfg.ffd_hidden = o.ffd_hidden;
  cfg.gating_size = o.gating_size;
  cfg.k_att = o.k_att;
  cfg.k_mlp = o.k_mlp;
  cfg.dtype = o.dtype;
  cfg.tie_word_embeddings = o.tie_word_embeddings;
  const auto L = static_cast<size_t>(o.layers);
  cfg.n_att_experts =
      o.attn_experts_per_layer.empty() ? std::vector<int64_t>(L, o.attn_experts) : o.attn_experts_per_layer;
  cfg.n_mlp_experts =
      o.mlp_experts_per_layer.empty() ? std::vector<int64_t>(L, o.mlp_experts) : o.mlp_experts_per_layer;
  if (cfg.n_att_experts.size() != L || cfg.n_mlp_experts.size() != L)
    return InvalidArgument("MakeRandomModel: per-layer expert lists must have one entry per layer (" +
                           std::to_string(L) + ")");
  for (size_t i = 0; i < L; ++i)
    if (cfg.n_att_experts[i] < o.k_att || cfg.n_mlp_experts[i] < o.k_mlp)
      return InvalidArgument("MakeRandomModel: layer " + std::to_string(i) + " has fewer experts than top-k");

  const int64_t D = o.d_model, F = o.ffd_hidden, G = o.gating_size, V = o.vocab;
  const DType dt = o.dtype;
  std::vector<BrickData> bricks;
  const auto brick = [&](BrickKind kind, int layer, int index) -> std::pair<BrickData*, Rng> {
    BrickData b;
    b.kind = kind, b.layer = layer, b.index = index;
    bricks.push_back(std::move(b));
    return {&bricks.back(), Rng(BrickSeed(o.seed, kind, layer, index))};
  };
  const auto norm = [&](int layer, int slot) {
    auto [b, rng] = brick(BrickKind::kNorm, layer, slot);
    b->tensors.emplace_back("weight", RandomTensor(rng, dt, {D}, 1.0f, 0.1f));
    b->tensors.emplace_back("bias", RandomTensor(rng, dt, {D}, 0.0f, 0.1f));
  };
  const auto router = [&](BrickKind kind, int layer, int64_t E) {
    auto [b, rng] = brick(kind, layer, -1);
    b->tensors.emplace_back("w1", RandomTensor(rng, dt, {G, D}, 0.0f, InvSqrt(D)));
    b->tensors.emplace_back("b1", RandomTensor(rng, dt, {G}, 0.0f, 0.1f));
    b->tensors.emplace_back("w2", RandomTensor(rng, dt, {E, G}, 0.0f, InvSqrt(G)));
  };
  const auto experts = [&](BrickKind kind, int layer, int64_t E, const char* n1, const char* n2, int64_t hidden) {
    for (int e = 0; e < E; ++e) {
      auto [b, rng] = brick(kind, layer, e);
      b->tensors.emplace_back(n1, RandomTensor(rng, dt, {D, hidden}, 0.0f, InvSqrt(D)));
      b->tensors.emplace_back(n2, RandomTensor(rng, dt, {hidden, D}, 0.0f, InvSqrt(hidden)));
    }
  };

  bricks.reserve(3 + L * 4 + 2 + [&] {
    size_t n = 0;
    for (size_t i = 0; i < L; ++i) n += static_cast<size_t>(cfg.n_att_experts[i] + cfg.n_mlp_experts[i]);
    return n;
  }());  // pointers from brick() stay valid: no reallocation
  {
    auto [b, rng] = brick(BrickKind::kEmbedding, -1, -1);
    b->tensors.emplace_back("weight", RandomTensor(rng, dt, {V, D}, 0.0f, 1.0f));
  }
  for (int i = 0; i < o.layers; ++i) {
    const auto l = static_cast<size_t>(i);
    norm(i, kNormAttn);
    router(BrickKind::kAttnRouter, i, cfg.n_att_experts[l]);
    experts(BrickKind::kAttnExpert, i, cfg.n_att_experts[l], "wq", "wo", D);
    norm(i, kNormMlp);
    router(BrickKind::kMlpRouter, i, cfg.n_mlp_experts[l]);
    experts(BrickKind::kMlpExpert, i, cfg.n_mlp_experts[l], "w1", "w2", F);
  }
  norm(-1, kNormFinal);
  {
    BrickData head;
    head.kind = BrickKind::kLmHead;
    if (o.tie_word_embeddings) {
      head.tensors.emplace_back("weight", bricks.front().tensors[0].second);
    } else {
      Rng rng(BrickSeed(o.seed, BrickKind::kLmHead, -1, -1));
      head.tensors.emplace_back("weight", RandomTensor(rng, dt, {V, D}, 0.0f, InvSqrt(D)));
    }
    bricks.push_back(std::move(head));
  }
  return std::make_pair(std::move(cfg), std::move(bricks));
}

Result<std::vector<BrickData>> MakeRandomLoras(const ModelConfig& base, const RandomLoraOptions& o) {
  if (o.rank < 1) return InvalidArgument("MakeRandomLoras: rank must be >= 1, got " + std::to_string(o.rank));
  if (!std::isfinite(o.alpha)) return InvalidArgument("MakeRandomLoras: alpha must be finite");
  const auto L = static_cast<size_t>(std::max<int64_t>(base.n_layer, 0));
  if (base.n_layer < 1 || base.n_embd < 1 || base.att_hidden < 1 || base.ffd_hidden < 1 || base.vocab_size < 1 ||
      base.n_att_experts.size() != L || base.n_mlp_experts.size() != L)
    return InvalidArgument(
        "MakeRandomLoras: the base config has non-positive sizes or expert lists of the wrong length");

  std::vector<std::string> globs;
  for (size_t start = 0;;) {
    const size_t comma = o.targets.find(',', start);
    std::string g = o.targets.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    g.erase(0, g.find_first_not_of(' '));
    g.erase(g.find_last_not_of(' ') + 1);
    if (g.empty())
      return InvalidArgument("lora targets '" + o.targets + "': empty glob (give comma-separated globs such as " +
                             "L*.mlp.E*.w1,lm_head.weight)");
    globs.push_back(std::move(g));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  const std::vector<LoraTarget> all = AllLoraTargets(base);
  std::vector<std::string> names;
  for (const LoraTarget& t : all) names.push_back(FormatLoraTarget(t));
  std::vector<bool> selected(all.size(), false);
  for (const std::string& g : globs) {
    bool any = false;
    for (size_t i = 0; i < all.size(); ++i) {
      if (GlobMatch(g, names[i])) selected[i] = any = true;
    }
    // Each glob must select something: a glob that matches nothing is a typo, not a request.
    if (!any) {
      std::string examples;
      for (const BrickKind kind : {BrickKind::kAttnExpert, BrickKind::kMlpExpert}) {
        const auto it = std::find_if(all.begin(), all.end(), [&](const LoraTarget& x) { return x.kind == kind; });
        if (it != all.end()) examples += FormatLoraTarget(*it) + ", ";
      }
      return InvalidArgument("lora targets: glob '" + g + "' selects no target of the base model (targets look like " +
                             examples + "lm_head.weight" +
                             (base.HasRemovals() ? "; experts the base removed are not targets" : "") + ")");
    }
  }

  std::vector<BrickData> out;
  for (size_t i = 0; i < all.size(); ++i) {
    if (!selected[i]) continue;
    const LoraTarget& t = all[i];
    const LoraFeatures f = LoraFeaturesOf(t.proj(), base);
    Rng rng(LoraSeed(o.seed, names[i]));
    BrickData b;
    b.kind = BrickKind::kLora;
    b.layer = t.layer;
    b.index = t.index;
    b.target = names[i];
    b.tensors.emplace_back("a", RandomTensor(rng, o.dtype, {o.rank, f.in}, 0.0f, InvSqrt(f.in)));
    b.tensors.emplace_back("b", RandomTensor(rng, o.dtype, {f.out, o.rank}, 0.0f, 0.5f * InvSqrt(o.rank)));
    Tensor alpha(DType::kF32, {1});
    alpha.mutable_data_as<float>()[0] = o.alpha;
    b.tensors.emplace_back("alpha", std::move(alpha));
    out.push_back(std::move(b));
  }
  return out;
}

namespace {
std::string GrowModulePrefix(bool attention) { return attention ? "attn.q_proj." : "mlpf."; }
}  // namespace

Status WriteGrowExperts(const std::string& path, const std::vector<BrickData>& bricks, int64_t layer, bool attention,
                        int64_t first, int64_t n, const std::string& prefix) {
  const BrickKind kind = attention ? BrickKind::kAttnExpert : BrickKind::kMlpExpert;
  std::vector<StWriteTensor> out(2);
  out[0].name = prefix + GrowModulePrefix(attention) + "experts.weight";
  out[1].name = prefix + GrowModulePrefix(attention) + "output_experts.weight";
  for (int64_t e = first; e < first + n; ++e) {  // in index order, whatever the bricks' order
    const auto b = std::find_if(bricks.begin(), bricks.end(),
                                [&](const BrickData& x) { return x.kind == kind && x.layer == layer && x.index == e; });
    if (b == bricks.end()) return NotFound("no expert " + std::to_string(e) + " in layer " + std::to_string(layer));
    for (size_t t = 0; t < 2; ++t) {
      const Tensor& x = b->tensors[t].second;
      out[t].dtype = FromDType(x.dtype());
      out[t].shape = {n, x.dim(0), x.dim(1)};
      out[t].parts.emplace_back(x.data(), x.nbytes());
    }
  }
  return WriteSafetensors(path, out);
}

Status WriteGrowRouterRows(const std::string& path, const std::vector<BrickData>& bricks, int64_t layer,
                           bool attention, int64_t first, int64_t n, const std::string& prefix) {
  const BrickKind kind = attention ? BrickKind::kAttnRouter : BrickKind::kMlpRouter;
  const auto router = std::find_if(bricks.begin(), bricks.end(),
                                   [&](const BrickData& x) { return x.kind == kind && x.layer == layer; });
  if (router == bricks.end()) return NotFound("no router in layer " + std::to_string(layer));
  const Tensor& w2 = *router->Find("w2");
  const size_t row = static_cast<size_t>(w2.dim(1)) * DTypeSize(w2.dtype());
  StWriteTensor t{prefix + GrowModulePrefix(attention) + "gate.w_gate.3.weight", FromDType(w2.dtype()), {n, w2.dim(1)},
                  {}};
  t.parts.emplace_back(static_cast<const uint8_t*>(w2.data()) + static_cast<size_t>(first) * row,
                       static_cast<size_t>(n) * row);
  return WriteSafetensors(path, {t});
}

Status MakeTestModel(const std::string& dir, const TestModelOptions& opts, const WriteOptions& write_opts) {
  BRICK_ASSIGN_OR_RETURN(auto model, MakeRandomModel(opts));
  return WriteHfCheckpoint(dir, model.first, model.second, write_opts);
}

}  // namespace brickrt
