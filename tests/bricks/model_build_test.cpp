// Model::Build refuses incomplete or malformed brick sets with an error naming the brick.
#include <gtest/gtest.h>

#include <limits>

#include "bricks/model.h"
#include "bricks/session.h"
#include "registry/test_model.h"

namespace brickrt {
namespace {

std::pair<ModelConfig, std::vector<BrickData>> Small() {
  TestModelOptions o;
  o.layers = 2;
  o.d_model = 32;
  o.ffd_hidden = 48;
  o.gating_size = 16;
  o.vocab = 50;
  o.attn_experts = 3;
  o.mlp_experts = 4;
  o.dtype = DType::kF32;
  return *MakeRandomModel(o);
}

TEST(ModelBuild, BuildsAndCountsBytes) {
  auto [cfg, bricks] = Small();
  auto m = Model::Build(cfg, bricks);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ((*m)->layers().size(), 2u);
  EXPECT_EQ((*m)->layers()[1].mlp.size(), 4u);
  EXPECT_GT((*m)->TotalWeightBytes(), (*m)->ActiveWeightBytesPerToken());
}

TEST(ModelBuild, MissingExpertIsNamed) {
  auto [cfg, bricks] = Small();
  std::erase_if(bricks, [](const BrickData& b) { return b.Name() == "L1.mlp.E2"; });
  auto m = Model::Build(cfg, bricks);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), StatusCode::kNotFound);
  EXPECT_NE(m.status().message().find("L1.mlp.E2"), std::string::npos) << m.status().message();
}

TEST(ModelBuild, WrongShapeIsNamedWithExpectedAndFound) {
  auto [cfg, bricks] = Small();
  for (BrickData& b : bricks) {
    if (b.Name() == "L0.attn.E1") b.tensors[0].second = Tensor(DType::kF32, {32, 31});
  }
  auto m = Model::Build(cfg, bricks);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("L0.attn.E1"), std::string::npos) << m.status().message();
  EXPECT_NE(m.status().message().find("[32, 31]"), std::string::npos) << m.status().message();
}

TEST(ModelBuild, TopKLargerThanALayersExpertsIsRejected) {
  auto [cfg, bricks] = Small();
  cfg.k_mlp = 5;
  auto m = Model::Build(cfg, bricks);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("top-k"), std::string::npos) << m.status().message();
}

TEST(ModelBuild, BrickTheConfigDoesNotCallForIsRejected) {
  auto [cfg, bricks] = Small();
  BrickData extra = bricks.back();
  for (const BrickData& b : bricks)
    if (b.Name() == "L1.mlp.E3") extra = b;
  extra.index = 4;  // the config says layer 1 has 4 MLP experts (0..3)
  bricks.push_back(extra);
  auto m = Model::Build(cfg, bricks);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("L1.mlp.E4"), std::string::npos) << m.status().message();
}

TEST(ModelBuild, NanRouterWeightsStillGiveValidExpertIds) {
  // NaN logits must not produce an expert id outside [0, E) (it used to read out of bounds).
  auto [cfg, bricks] = Small();
  for (BrickData& b : bricks) {
    if (b.Name() == "L0.mlp.router") {
      Tensor w2 = b.Find("w2")->Clone();
      float* p = w2.mutable_data_as<float>();
      for (int64_t i = 0; i < w2.numel(); ++i) p[i] = std::numeric_limits<float>::quiet_NaN();
      for (auto& [name, t] : b.tensors)
        if (name == "w2") t = w2;
    }
  }
  auto m = Model::Build(cfg, bricks);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  Session s(*m, SessionOptions{1, 8, 8}, nullptr);
  const int seq = *s.AddSequence();
  std::vector<float> logits(50);
  const std::vector<int32_t> tokens = {1, 2, 3};
  const SequenceChunk c{seq, tokens};
  EXPECT_TRUE(s.Forward({&c, 1}, false, logits.data()).ok());
}

TEST(ModelBuild, DuplicateBrickIsRejected) {
  auto [cfg, bricks] = Small();
  bricks.push_back(bricks.back());
  EXPECT_FALSE(Model::Build(cfg, bricks).ok());
}

}  // namespace
}  // namespace brickrt
