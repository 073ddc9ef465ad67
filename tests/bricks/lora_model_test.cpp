// LoRA plugins in a running model: attached on the fly (Model::Build's loras) the logits equal those
// of the model built from merged bricks, in prefill and in cached decode, for untied, tied and pruned
// models; targets outside the model are refused with errors naming the lora.
#include <gtest/gtest.h>

#include <cmath>

#include "bricks/model.h"
#include "bricks/session.h"
#include "lora_util.h"
#include "registry/test_model.h"

namespace brickrt {
namespace {

using testing::FindBrick;
using testing::MakeLora;

constexpr int64_t D = 32, F = 48, V = 50;

std::pair<ModelConfig, std::vector<BrickData>> SmallF32(bool tied = false) {
  TestModelOptions o;
  o.layers = 2;
  o.d_model = D;
  o.ffd_hidden = F;
  o.gating_size = 16;
  o.vocab = V;
  o.attn_experts = 3;
  o.mlp_experts = 4;
  o.k_att = 2;
  o.k_mlp = 2;
  o.dtype = DType::kF32;
  o.tie_word_embeddings = tied;
  return *MakeRandomModel(o);
}

// Loras on all five kinds of projection, two on one projection (they sum), two on one expert, and
// mixed dtypes.
std::vector<LoraAttachment> SeveralLoras() {
  return {
      {MakeLora("L0.attn.E1.wq", 4, D, D, DType::kBF16, 8, 1), 1.0},
      {MakeLora("L1.attn.E0.wo", 2, D, D, DType::kF32, 4, 2), 0.5},
      {MakeLora("L0.mlp.E2.w1", 3, D, F, DType::kF16, 6, 3), 1.0},
      {MakeLora("L0.mlp.E2.w1", 5, D, F, DType::kF32, 5, 4), -0.7},
      {MakeLora("L0.mlp.E2.w2", 3, F, D, DType::kF32, 6, 5), 1.0},
      {MakeLora("L1.mlp.E3.w2", 4, F, D, DType::kBF16, 8, 6), 2.0},
      {MakeLora("lm_head.weight", 4, D, V, DType::kF32, 8, 7), 1.0},
  };
}

// The bricks with every lora merged into its target (in order; loras on one projection merge twice).
std::vector<BrickData> Merged(std::vector<BrickData> bricks, const std::vector<LoraAttachment>& loras) {
  for (const LoraAttachment& l : loras) {
    const std::string name = l.brick.target.substr(0, l.brick.target.rfind('.'));
    BrickData* target = FindBrick(bricks, name);
    EXPECT_NE(target, nullptr) << name;
    auto merged = MergeLora(*target, l.brick, l.scale);
    EXPECT_TRUE(merged.ok()) << merged.status().ToString();
    *target = std::move(*merged);
  }
  return bricks;
}

std::shared_ptr<const Model> Build(const ModelConfig& cfg, std::vector<BrickData> bricks,
                                   std::vector<LoraAttachment> loras = {}) {
  auto m = Model::Build(cfg, std::move(bricks), std::move(loras));
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  return m.ok() ? *m : nullptr;
}

const std::vector<int32_t> kPrompt = {3, 17, 42, 8, 8, 1, 29, 49, 0, 12, 5};

// Logits [T, V] of the prompt in one prefill step.
std::vector<float> PrefillLogits(const std::shared_ptr<const Model>& model, ThreadPool* pool) {
  Session s(model, SessionOptions{1, 32, 32}, pool);
  const int seq = *s.AddSequence();
  std::vector<float> logits(kPrompt.size() * V);
  const SequenceChunk chunk{seq, kPrompt};
  EXPECT_TRUE(s.Forward({&chunk, 1}, true, logits.data()).ok());
  return logits;
}

// Same logits, one token per step (the decode path: M = 1 everywhere).
std::vector<float> DecodeLogits(const std::shared_ptr<const Model>& model) {
  Session s(model, SessionOptions{1, 32, 32}, nullptr);
  const int seq = *s.AddSequence();
  std::vector<float> logits(kPrompt.size() * V);
  for (size_t t = 0; t < kPrompt.size(); ++t) {
    const SequenceChunk chunk{seq, {&kPrompt[t], 1}};
    EXPECT_TRUE(s.Forward({&chunk, 1}, false, logits.data() + t * V).ok());
  }
  return logits;
}

// max |a - b| / max |b|.
double RelDiff(const std::vector<float>& a, const std::vector<float>& b) {
  double d = 0, m = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    d = std::max(d, static_cast<double>(std::fabs(a[i] - b[i])));
    m = std::max(m, static_cast<double>(std::fabs(b[i])));
  }
  return d / m;
}

// F32 weights: on the fly and merged differ only in F32 rounding (the merged weights are rounded
// once; the on-the-fly path rounds x·Aᵀ and the product separately), ~1e-6 relative observed.
constexpr double kSameModel = 1e-4;

TEST(LoraModel, OnTheFlyEqualsMergedInPrefillAndDecode) {
  auto [cfg, bricks] = SmallF32();
  const auto loras = SeveralLoras();
  auto base = Build(cfg, bricks);
  auto fly = Build(cfg, bricks, loras);
  auto merged = Build(cfg, Merged(bricks, loras));
  ASSERT_TRUE(base && fly && merged);
  EXPECT_EQ(fly->lora_count(), 7);
  EXPECT_EQ(fly->layers()[0].lora_rank, 5);
  EXPECT_EQ(fly->layers()[0].mlp[2]->w1_lora().size(), 2u);
  EXPECT_TRUE(fly->layers()[0].mlp[1]->w1_lora().empty());
  EXPECT_EQ(fly->layers()[1].attn[1]->lora_rank(), 0);

  ThreadPool pool(2);
  const std::vector<float> want = PrefillLogits(merged, &pool);
  const std::vector<float> got = PrefillLogits(fly, &pool);
  EXPECT_LT(RelDiff(got, want), kSameModel);
  EXPECT_LT(RelDiff(PrefillLogits(fly, nullptr), want), kSameModel);
  EXPECT_LT(RelDiff(DecodeLogits(fly), want), kSameModel);
  // The loras matter: the logits move far more than the tolerance.
  EXPECT_GT(RelDiff(PrefillLogits(base, &pool), want), 100 * kSameModel);
}

TEST(LoraModel, EachLoraOnItsOwnMatchesItsMerge) {
  auto [cfg, bricks] = SmallF32();
  for (const LoraAttachment& l : SeveralLoras()) {
    SCOPED_TRACE(l.brick.target);
    auto fly = Build(cfg, bricks, {l});
    auto merged = Build(cfg, Merged(bricks, {l}));
    ASSERT_TRUE(fly && merged);
    EXPECT_LT(RelDiff(PrefillLogits(fly, nullptr), PrefillLogits(merged, nullptr)), kSameModel);
  }
}

TEST(LoraModel, TiedHeadTakesALoraOnTheFly) {
  // A tied model's lm_head brick shares the embedding's storage. Merging is refused for it (export
  // drops a tied head); on the fly it equals an untied model whose head is the merged copy.
  auto [cfg, bricks] = SmallF32(/*tied=*/true);
  const LoraAttachment head{MakeLora("lm_head.weight", 4, D, V, DType::kBF16, 8, 9), 1.5};
  EXPECT_FALSE(CheckMergeable(head.brick, cfg).ok());
  auto fly = Build(cfg, bricks, {head});
  ASSERT_TRUE(fly);
  ModelConfig untied_cfg = cfg;
  untied_cfg.tie_word_embeddings = false;
  EXPECT_TRUE(CheckMergeable(head.brick, untied_cfg).ok());
  const void* embedding = FindBrick(bricks, "embed")->tensors[0].second.data();
  std::vector<BrickData> untied = Merged(bricks, {head});
  EXPECT_EQ(FindBrick(untied, "embed")->tensors[0].second.data(), embedding);  // the embedding is untouched
  EXPECT_NE(FindBrick(untied, "lm_head")->tensors[0].second.data(), embedding);
  auto merged = Build(untied_cfg, untied);
  ASSERT_TRUE(merged);
  EXPECT_LT(RelDiff(PrefillLogits(fly, nullptr), PrefillLogits(merged, nullptr)), kSameModel);
}

TEST(LoraModel, PrunedModelTakesLorasOnKeptExpertsOnly) {
  auto [cfg, bricks] = SmallF32();
  cfg.mlp_removed = {{1}, {}};
  cfg.att_removed = {{}, {0}};
  std::erase_if(bricks, [](const BrickData& b) { return b.Name() == "L0.mlp.E1" || b.Name() == "L1.attn.E0"; });
  const std::vector<LoraAttachment> loras = {{MakeLora("L0.mlp.E2.w1", 3, D, F, DType::kF32, 6, 3), 1.0},
                                             {MakeLora("L1.attn.E2.wo", 2, D, D, DType::kF32, 4, 2), 1.0}};
  auto fly = Build(cfg, bricks, loras);
  auto merged = Build(cfg, Merged(bricks, loras));
  ASSERT_TRUE(fly && merged);
  EXPECT_EQ(fly->layers()[0].mlp[1]->w1_lora().size(), 1u);  // slot 1 holds expert 2
  EXPECT_LT(RelDiff(PrefillLogits(fly, nullptr), PrefillLogits(merged, nullptr)), kSameModel);

  auto removed = Model::Build(cfg, bricks, {{MakeLora("L0.mlp.E1.w1", 3, D, F, DType::kF32, 6, 3), 1.0}});
  ASSERT_FALSE(removed.ok());
  EXPECT_EQ(removed.status().code(), StatusCode::kNotFound);
  EXPECT_NE(removed.status().message().find("lora L0.mlp.E1.w1: expert 1 is not in layer 0"), std::string::npos)
      << removed.status().message();
}

TEST(LoraModel, TargetsOutsideTheModelAndBadBricksAreRefused) {
  auto [cfg, bricks] = SmallF32();
  struct Bad {
    LoraAttachment lora;
    std::string message;
  };
  BrickData not_a_lora = *FindBrick(bricks, "L0.ln1");
  BrickData shape = MakeLora("L1.mlp.E0.w2", 3, D, D, DType::kF32, 6, 3);  // w2's in is F, not D
  BrickData inconsistent = MakeLora("L1.mlp.E0.w1", 3, D, F, DType::kF32, 6, 3);
  inconsistent.layer = 0;
  BrickData bad_target = MakeLora("L1.mlp.E0.w1", 3, D, F, DType::kF32, 6, 3);
  bad_target.target = "L1.mlp.E0.w3";
  const Bad cases[] = {
      {{MakeLora("L2.mlp.E0.w1", 3, D, F, DType::kF32, 6, 3), 1.0}, "lora L2.mlp.E0.w1: the model has no layer 2"},
      {{MakeLora("L1.attn.E3.wq", 3, D, D, DType::kF32, 6, 3), 1.0}, "expert 3 is not in layer 1"},
      {{shape, 1.0}, "lora L1.mlp.E0.w2: tensor 'a' has shape [3, 32], expected [r, 48]"},
      {{not_a_lora, 1.0}, "brick L0.ln1 (norm) is not a lora"},
      {{inconsistent, 1.0}, "disagree with its target"},
      {{bad_target, 1.0}, "lora target 'L1.mlp.E0.w3' is not a projection"},
      {{MakeLora("lm_head.weight", 3, D, V + 1, DType::kF32, 6, 3), 1.0}, "expected [50, 3]"},
  };
  for (const Bad& c : cases) {
    auto m = Model::Build(cfg, bricks, {c.lora});
    ASSERT_FALSE(m.ok()) << c.message;
    EXPECT_NE(m.status().message().find(c.message), std::string::npos) << m.status().message();
  }
  std::vector<BrickData> with_lora = bricks;
  with_lora.push_back(MakeLora("L1.mlp.E0.w1", 3, D, F, DType::kF32, 6, 3));
  auto m = Model::Build(cfg, with_lora);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("is a lora plugin"), std::string::npos) << m.status().message();
}

TEST(LoraModel, WeightBytesCountTheLoras) {
  auto [cfg, bricks] = SmallF32();
  auto base = Build(cfg, bricks);
  auto fly = Build(cfg, bricks, SeveralLoras());
  ASSERT_TRUE(base && fly);
  int64_t lora_bytes = LoraBytes(fly->lm_head().lora());
  for (const Layer& l : fly->layers()) {
    for (const auto& e : l.attn) lora_bytes += e->lora_bytes();
    for (const auto& e : l.mlp) lora_bytes += e->lora_bytes();
  }
  EXPECT_GT(lora_bytes, 0);
  EXPECT_EQ(fly->TotalWeightBytes(), base->TotalWeightBytes() + lora_bytes);
  EXPECT_GT(fly->ActiveWeightBytesPerToken(), base->ActiveWeightBytesPerToken() + LoraBytes(fly->lm_head().lora()));
  EXPECT_LT(fly->ActiveWeightBytesPerToken(), base->ActiveWeightBytesPerToken() + lora_bytes);
}

}  // namespace
}  // namespace brickrt
