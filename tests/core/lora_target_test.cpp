// Tests for core/lora_target: the target grammar (round trip, canonical form only), features and
// orientation per projection, the model and tensor checks, and the finiteness scan.
#include "core/lora_target.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

namespace brickrt {
namespace {

bool Contains(const Status& st, const std::string& needle) {
  return st.message().find(needle) != std::string::npos;
}

ModelConfig SmallConfig() {
  ModelConfig cfg;
  cfg.n_layer = 2;
  cfg.n_embd = 8;       // D
  cfg.att_hidden = 12;  // A (brickrt runs A == D; distinct here so a swap shows)
  cfg.ffd_hidden = 16;  // F
  cfg.vocab_size = 50;  // V
  cfg.n_att_experts = {3, 4};
  cfg.n_mlp_experts = {5, 2};
  return cfg;
}

// A lora brick on t with zero "a" and "b" F32 of the given shapes and alpha 16.
BrickData Lora(const LoraTarget& t, Shape a, Shape b) {
  BrickData l;
  l.kind = BrickKind::kLora;
  l.target = FormatLoraTarget(t);
  l.layer = t.layer;
  l.index = t.index;
  Tensor alpha(DType::kF32, {1});
  alpha.mutable_data_as<float>()[0] = 16.0f;
  l.tensors = {{"a", Tensor(DType::kF32, std::move(a))}, {"b", Tensor(DType::kF32, std::move(b))}, {"alpha", alpha}};
  return l;
}

TEST(LoraTarget, EveryProjectionRoundTrips) {
  struct Case {
    const char* name;
    LoraProj proj;
    BrickKind kind;
    int layer, index;
    const char* tensor;
  };
  const Case cases[] = {
      {"L0.attn.E0.wq", LoraProj::kWq, BrickKind::kAttnExpert, 0, 0, "wq"},
      {"L3.attn.E12.wo", LoraProj::kWo, BrickKind::kAttnExpert, 3, 12, "wo"},
      {"L12.mlp.E5.w1", LoraProj::kW1, BrickKind::kMlpExpert, 12, 5, "w1"},
      {"L999999.mlp.E999999.w2", LoraProj::kW2, BrickKind::kMlpExpert, 999999, 999999, "w2"},
      {"lm_head.weight", LoraProj::kLmHead, BrickKind::kLmHead, -1, -1, "weight"},
  };
  for (const Case& c : cases) {
    auto t = ParseLoraTarget(c.name);
    ASSERT_TRUE(t.ok()) << c.name << ": " << t.status().ToString();
    EXPECT_EQ(t->proj(), c.proj) << c.name;
    EXPECT_EQ(t->kind, c.kind) << c.name;
    EXPECT_EQ(t->layer, c.layer) << c.name;
    EXPECT_EQ(t->index, c.index) << c.name;
    EXPECT_EQ(t->tensor, c.tensor) << c.name;
    EXPECT_EQ(FormatLoraTarget(*t), c.name);
    const LoraTarget made = MakeLoraTarget(c.proj, c.layer, c.index);
    EXPECT_EQ(FormatLoraTarget(made), c.name);
    EXPECT_EQ(made.kind, c.kind);
    EXPECT_EQ(made.tensor, c.tensor);
  }
  // The lm head has no layer or expert, whatever the caller passes.
  EXPECT_EQ(MakeLoraTarget(LoraProj::kLmHead, 3, 4).layer, -1);
  EXPECT_EQ(MakeLoraTarget(LoraProj::kLmHead, 3, 4).index, -1);
}

TEST(LoraTarget, RejectsNonCanonicalHugeUnknownAndGarbage) {
  for (const char* bad : {
           // leading zeros, signs, spaces: one spelling per target, so equal names mean equal targets
           "L01.mlp.E1.w1", "L0.mlp.E01.w1", "L00.mlp.E0.w1", "L-1.mlp.E1.w1", "L+1.mlp.E1.w1", "L 1.mlp.E1.w1",
           // more than six digits
           "L1000000.mlp.E1.w1", "L0.mlp.E1000000.w1", "L99999999999999999999.mlp.E0.w1",
           // projections of the other expert kind, unknown ones, other tensors
           "L0.attn.E1.w1", "L0.mlp.E1.wq", "L0.mlp.E1.w3", "L0.attn.E1.wk", "lm_head.bias", "L0.ln1.weight",
           "L0.attn.router.w1", "embed.weight",
           // garbage and truncations
           "", ".", "L", "L0", "L0.mlp", "L0.mlp.E1", "L0.mlp.E1.", "L0.mlp.E.w1", "L.mlp.E0.w1", "L0..E0.w1",
           "L0.mlp.E1.w1.", "L0.mlp.E1.w1x", "L0.mlp.E1.w1.w2", "X0.mlp.E1.w1", "L0.mlp.F1.w1", "l0.mlp.e1.w1",
           "lm_head.weight.", "lm_head", "L0.MLP.E0.w1", "L0.mlp.E0.W1"}) {
    auto r = ParseLoraTarget(bad);
    ASSERT_FALSE(r.ok()) << "'" << bad << "' parsed";
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_TRUE(Contains(r.status(), "'" + std::string(bad) + "'")) << r.status().message();
    EXPECT_TRUE(Contains(r.status(), "L<layer>.mlp.E<i>.w1|w2")) << r.status().message();
  }
}

TEST(LoraTarget, IndexGrammar) {
  EXPECT_EQ(ParseLoraIndex("0"), 0);
  EXPECT_EQ(ParseLoraIndex("7"), 7);
  EXPECT_EQ(ParseLoraIndex("999999"), 999999);
  for (const char* bad : {"", "00", "01", "1000000", "-1", "+1", "1a", "a", " 1", "1 "})
    EXPECT_EQ(ParseLoraIndex(bad), std::nullopt) << "'" << bad << "'";
}

TEST(LoraTarget, FeaturesAndOrientationPerProjection) {
  const ModelConfig cfg = SmallConfig();  // D 8, A 12, F 16, V 50
  struct Case {
    LoraProj proj;
    int64_t in, out;
    bool stored_in_out;
  };
  const Case cases[] = {
      {LoraProj::kWq, 8, 12, true},  {LoraProj::kWo, 12, 8, true},       {LoraProj::kW1, 8, 16, true},
      {LoraProj::kW2, 16, 8, true},  {LoraProj::kLmHead, 8, 50, false},
  };
  for (const Case& c : cases) {
    const LoraFeatures f = LoraFeaturesOf(c.proj, cfg);
    EXPECT_EQ(f.in, c.in) << FormatLoraTarget(MakeLoraTarget(c.proj, 0, 0));
    EXPECT_EQ(f.out, c.out) << FormatLoraTarget(MakeLoraTarget(c.proj, 0, 0));
    EXPECT_EQ(LoraBaseStoredInOut(c.proj), c.stored_in_out);
  }
}

TEST(LoraTarget, CanonicalOrder) {
  std::vector<std::string> names = {"lm_head.weight", "L1.attn.E0.wq", "L0.mlp.E1.w1", "L0.mlp.E0.w2",
                                    "L0.attn.E1.wo", "L0.mlp.E0.w1", "L0.attn.E1.wq", "L10.attn.E0.wq",
                                    "L2.mlp.E0.w1"};
  std::vector<LoraTarget> targets;
  for (const std::string& n : names) targets.push_back(*ParseLoraTarget(n));
  std::sort(targets.begin(), targets.end(), LoraTargetBefore);
  std::vector<std::string> sorted;
  for (const LoraTarget& t : targets) sorted.push_back(FormatLoraTarget(t));
  EXPECT_EQ(sorted, (std::vector<std::string>{"L0.attn.E1.wq", "L0.attn.E1.wo", "L0.mlp.E0.w1", "L0.mlp.E0.w2",
                                              "L0.mlp.E1.w1", "L1.attn.E0.wq", "L2.mlp.E0.w1", "L10.attn.E0.wq",
                                              "lm_head.weight"}));
}

TEST(LoraTarget, TargetOfChecksKindAndFields) {
  BrickData lora = Lora(MakeLoraTarget(LoraProj::kW2, 1, 0), {2, 16}, {8, 2});
  auto t = LoraTargetOf(lora);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->proj(), LoraProj::kW2);
  lora.index = 1;
  EXPECT_TRUE(Contains(LoraTargetOf(lora).status(), "disagree with its target"));
  lora.index = 0;
  lora.target = "L1.mlp.E0.w3";
  EXPECT_TRUE(Contains(LoraTargetOf(lora).status(), "lora target 'L1.mlp.E0.w3' is not a projection"));
  BrickData norm;
  norm.kind = BrickKind::kNorm;
  norm.layer = 0;
  norm.index = kNormAttn;
  EXPECT_TRUE(Contains(LoraTargetOf(norm).status(), "brick L0.ln1 (norm) is not a lora"));
}

TEST(LoraTarget, CheckInModel) {
  ModelConfig cfg = SmallConfig();
  cfg.att_removed = {{}, {}};
  cfg.mlp_removed = {{3}, {}};
  EXPECT_TRUE(CheckLoraTargetIn(MakeLoraTarget(LoraProj::kLmHead), cfg).ok());
  EXPECT_TRUE(CheckLoraTargetIn(MakeLoraTarget(LoraProj::kWo, 1, 3), cfg).ok());
  EXPECT_TRUE(CheckLoraTargetIn(MakeLoraTarget(LoraProj::kW2, 0, 4), cfg).ok());
  const struct {
    LoraTarget t;
    const char* needle;
  } bad[] = {
      {MakeLoraTarget(LoraProj::kW1, 2, 0), "layer 2 is beyond the base model's 2 layers"},
      {MakeLoraTarget(LoraProj::kWq, 0, 3), "expert 3 is beyond layer 0's 3 attention experts"},
      {MakeLoraTarget(LoraProj::kW1, 1, 2), "expert 2 is beyond layer 1's 2 MLP experts"},
      {MakeLoraTarget(LoraProj::kW1, 0, 3), "expert 3 of layer 0 is removed from the base model"},
  };
  for (const auto& c : bad) {
    const Status st = CheckLoraTargetIn(c.t, cfg);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << FormatLoraTarget(c.t);
    EXPECT_TRUE(Contains(st, c.needle)) << st.message();
  }
}

TEST(LoraTarget, CheckTensors) {
  auto r = CheckLoraTensors(Lora(MakeLoraTarget(LoraProj::kW1, 0, 0), {4, 8}, {16, 4}), 8, 16);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, 4);
  Status st = CheckLoraTensors(Lora(MakeLoraTarget(LoraProj::kW1, 0, 0), {4, 9}, {16, 4}), 8, 16).status();
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(st, "lora L0.mlp.E0.w1: tensor 'a' has shape [4, 9], expected [r, 8]")) << st.message();
  st = CheckLoraTensors(Lora(MakeLoraTarget(LoraProj::kW1, 0, 0), {4, 8}, {15, 4}), 8, 16).status();
  EXPECT_TRUE(Contains(st, "[15, 4]") && Contains(st, "expected [16, 4]")) << st.message();
  st = CheckLoraTensors(Lora(MakeLoraTarget(LoraProj::kW1, 0, 0), {0, 8}, {16, 0}), 8, 16).status();
  EXPECT_TRUE(Contains(st, "r >= 1")) << st.message();
  BrickData lora = Lora(MakeLoraTarget(LoraProj::kLmHead), {2, 8}, {50, 2});
  lora.tensors[2].second.mutable_data_as<float>()[0] = std::numeric_limits<float>::infinity();
  st = CheckLoraTensors(lora, 8, 50).status();
  EXPECT_TRUE(Contains(st, "alpha is not finite")) << st.message();
  lora.tensors.pop_back();
  st = CheckLoraTensors(lora, 8, 50).status();
  EXPECT_EQ(st.code(), StatusCode::kNotFound);
  EXPECT_TRUE(Contains(st, "lora lm_head.weight: missing tensor 'alpha'")) << st.message();
}

TEST(LoraTarget, FirstNonFiniteFindsTheFirstBadElementInEveryDType) {
  for (const DType dt : {DType::kF32, DType::kF16, DType::kBF16}) {
    Tensor t(dt, {3, 5000});  // more than one 4096-element block
    EXPECT_EQ(FirstNonFinite(t), std::nullopt) << DTypeName(dt);
    for (const float bad : {std::nanf(""), std::numeric_limits<float>::infinity(),
                            -std::numeric_limits<float>::infinity()}) {
      Tensor u = t.Clone();
      auto set = [&](int64_t i, float v) {
        ConvertFromF32(&v, 1, dt, static_cast<uint8_t*>(u.mutable_data()) + i * DTypeSize(dt));
      };
      set(9000, 1.0f);
      set(9001, bad);
      set(14999, bad);
      EXPECT_EQ(FirstNonFinite(u), 9001) << DTypeName(dt) << " " << bad;
    }
  }
  EXPECT_EQ(FirstNonFinite(Tensor(DType::kF32, {0})), std::nullopt);
}

}  // namespace
}  // namespace brickrt
