// Split MLP execution (bricks/executor.h): experts run on executors give the same logits, bit for
// bit, as all-local execution; one call per (layer, executor) per step; an executor's failure aborts
// the step with nothing advanced; and bad placements are refused by Session::Create.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <thread>

#include "bricks/blocks.h"
#include "bricks/cpu_expert_executor.h"
#include "bricks/session.h"
#include "registry/test_model.h"
#include "split_steps.h"
#include "thread_executor.h"

namespace brickrt {
namespace {

using testing::MakePlacement;
using testing::RunSteps;
using testing::ThreadExecutor;

TestModelOptions RandomModelOptions(DType dtype) {
  TestModelOptions o;
  o.layers = 3;
  o.d_model = 64;
  o.ffd_hidden = 96;
  o.gating_size = 32;
  o.vocab = 257;
  o.attn_experts_per_layer = {4, 3, 6};
  o.mlp_experts_per_layer = {8, 5, 7};
  o.dtype = dtype;
  o.seed = 21;
  return o;
}

std::shared_ptr<const Model> RandomModel(DType dtype) {
  auto made = MakeRandomModel(RandomModelOptions(dtype));
  if (!made.ok()) return nullptr;
  auto model = Model::Build(made->first, std::move(made->second));
  return model.ok() ? *model : nullptr;
}

class SplitTest : public ::testing::TestWithParam<DType> {};

TEST_P(SplitTest, SplitEqualsLocalBitForBitWithOneCallPerLayerAndExecutor) {
  auto model = RandomModel(GetParam());
  ASSERT_NE(model, nullptr);
  Status st;
  const std::vector<float> local = RunSteps(model, nullptr, &st);
  ASSERT_TRUE(st.ok()) << st.ToString();
  ThreadExecutor a(model), b(model);
  const MlpPlacement p = MakePlacement(*model, {&a, &b});
  const std::vector<float> split = RunSteps(model, &p, &st);
  ASSERT_TRUE(st.ok()) << st.ToString();
  ASSERT_EQ(split.size(), local.size());
  EXPECT_TRUE(split == local) << "split execution must equal local execution bit for bit";

  // 4 steps x 2 split layers, at most one call each (an executor none of whose experts got a row
  // is not called); every call lists its experts ascending with a row count each.
  for (const ThreadExecutor* ex : {&a, &b}) {
    EXPECT_GE(ex->calls.size(), 6u);
    EXPECT_LE(ex->calls.size(), 8u);
    std::vector<int64_t> layers;
    for (const auto& c : ex->calls) {
      layers.push_back(c.layer);
      EXPECT_TRUE(c.layer == 0 || c.layer == 2);
      EXPECT_TRUE(std::is_sorted(c.experts.begin(), c.experts.end()));
      EXPECT_EQ(c.experts.size(), c.counts.size());
      for (int32_t n : c.counts) EXPECT_GE(n, 1);
    }
  }
  // The prefill call carries rows of all three sequences: 14 tokens x top-2 over 8 experts.
  int32_t rows = 0;
  for (const ThreadExecutor* ex : {&a, &b})
    for (int32_t n : ex->calls[0].counts) rows += n;
  EXPECT_GT(rows, 3);
}

INSTANTIATE_TEST_SUITE_P(Dtypes, SplitTest, ::testing::Values(DType::kF32, DType::kBF16));

// The CPU executor a model on a GPU uses for the experts its placement keeps on the CPU: on a CPU
// session it gives the local answer bit for bit (the same expert objects), on its own thread.
TEST(CpuExpertExecutor, GivesTheLocalAnswerAndReportsBadCalls) {
  auto model = RandomModel(DType::kBF16);
  ASSERT_NE(model, nullptr);
  Status st;
  const std::vector<float> local = RunSteps(model, nullptr, &st);
  ASSERT_TRUE(st.ok()) << st.ToString();
  CpuExpertExecutor a(model), b(model);
  const MlpPlacement p = MakePlacement(*model, {&a, &b});
  EXPECT_TRUE(RunSteps(model, &p, &st) == local);
  ASSERT_TRUE(st.ok()) << st.ToString();

  const int64_t D = model->config().n_embd;
  std::vector<float> x(static_cast<size_t>(2 * D), 0.5f), y(x.size());
  const std::vector<int64_t> gone = {7};  // layer 1 keeps 5 experts
  const std::vector<int32_t> two = {2};
  ASSERT_TRUE(a.Start({1, D, gone, two, x.data(), y.data()}).ok());
  EXPECT_EQ(a.Finish().code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(a.Start({9, D, gone, two, x.data(), y.data()}).ok());
  EXPECT_EQ(a.Finish().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(a.Finish().code(), StatusCode::kInternal);  // nothing in flight
  const std::vector<int64_t> kept = {4};
  ASSERT_TRUE(a.Start({1, D, kept, two, x.data(), y.data()}).ok());
  EXPECT_EQ(a.Start({1, D, kept, two, x.data(), y.data()}).code(), StatusCode::kInternal);  // one at a time
  EXPECT_TRUE(a.Finish().ok());
}

// Experts carrying LoRA deltas on the CPU executor: it applies them, so the split answer is still the
// local one bit for bit (a node would not: placement keeps those experts off nodes).
TEST(CpuExpertExecutor, AppliesTheExpertsLoras) {
  auto made = MakeRandomModel(RandomModelOptions(DType::kF32));
  ASSERT_TRUE(made.ok());
  auto loras = MakeRandomLoras(made->first, {.targets = "L0.mlp.E*.w1,L2.mlp.E*.w2", .rank = 4});
  ASSERT_TRUE(loras.ok()) << loras.status().ToString();
  std::vector<LoraAttachment> attach;
  for (BrickData& b : *loras) attach.push_back({std::move(b), 0.5});
  auto model = Model::Build(made->first, std::move(made->second), std::move(attach));
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  Status st;
  const std::vector<float> local = RunSteps(*model, nullptr, &st);
  ASSERT_TRUE(st.ok()) << st.ToString();
  CpuExpertExecutor a(*model), b(*model);
  EXPECT_TRUE(a.AppliesLoras());
  const MlpPlacement p = MakePlacement(**model, {&a, &b});
  EXPECT_TRUE(RunSteps(*model, &p, &st) == local);
  EXPECT_TRUE(st.ok()) << st.ToString();
}

TEST(SplitFailure, AnExecutorErrorAbortsTheStepAndNothingAdvances) {
  auto model = RandomModel(DType::kF32);
  ASSERT_NE(model, nullptr);
  for (const bool at_start : {true, false}) {
    ThreadExecutor a(model), b(model);
    const MlpPlacement p = MakePlacement(*model, {&a, &b});
    SessionOptions so{1, 32, 32};
    so.mlp_placement = &p;
    auto session = Session::Create(model, so, nullptr);
    ASSERT_TRUE(session.ok()) << session.status().ToString();
    Session& s = **session;
    const int seq = *s.AddSequence();
    const std::vector<int32_t> prompt = {4, 8, 15, 16, 23, 42};
    const SequenceChunk c{seq, prompt};
    const int64_t V = model->config().vocab_size;
    std::vector<float> failed(static_cast<size_t>(V)), ok(static_cast<size_t>(V));
    (at_start ? b.fail_start : b.fail_finish) = true;
    const Status st = s.Forward({&c, 1}, false, failed.data());
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.code(), StatusCode::kUnavailable) << st.ToString();
    EXPECT_EQ(s.Length(seq), 0) << "the failed step must not advance the sequence";
    // The other executor's started call was finished: a new step may start it again.
    b.fail_start = b.fail_finish = false;
    ASSERT_TRUE(s.Forward({&c, 1}, false, ok.data()).ok());
    EXPECT_EQ(s.Length(seq), static_cast<int64_t>(prompt.size()));
    Session plain(model, SessionOptions{1, 32, 32}, nullptr);
    const int pseq = *plain.AddSequence();
    std::vector<float> want(static_cast<size_t>(V));
    const SequenceChunk pc{pseq, prompt};
    ASSERT_TRUE(plain.Forward({&pc, 1}, false, want.data()).ok());
    EXPECT_TRUE(ok == want) << "after a failed step the session computes as if it never happened";
  }
}

// The experts of an unavailable executor leave the routing as if dropped (on_failure: skip-expert):
// the split model computes what the same model with those experts removed computes, whether the
// executor was unavailable before the step or failed during it and stepped aside.
TEST(SplitSkip, UnavailableExecutorsExpertsAreDroppedFromTheRouting) {
  auto made = MakeRandomModel(RandomModelOptions(DType::kF32));
  ASSERT_TRUE(made.ok());
  auto [cfg, bricks] = std::move(made).value();
  auto model = Model::Build(cfg, bricks);
  ASSERT_TRUE(model.ok());
  // Without executor b's experts (MakePlacement: slots 1, 4, 7 of layers 0 and 2).
  ModelConfig dropped_cfg = cfg;
  dropped_cfg.att_removed.assign(3, {});
  dropped_cfg.mlp_removed = {{1, 4, 7}, {}, {1, 4}};
  std::vector<BrickData> kept = bricks;
  std::erase_if(kept, [&](const BrickData& b) {
    return b.kind == BrickKind::kMlpExpert && dropped_cfg.IsRemoved(false, b.layer, b.index);
  });
  auto dropped = Model::Build(dropped_cfg, kept);
  ASSERT_TRUE(dropped.ok()) << dropped.status().ToString();
  Status st;
  const std::vector<float> want = RunSteps(*dropped, nullptr, &st);
  ASSERT_TRUE(st.ok()) << st.ToString();

  for (const bool fails_mid_step : {false, true}) {
    SCOPED_TRACE(fails_mid_step ? "fails during the first call" : "unavailable from the start");
    ThreadExecutor a(*model), b(*model);
    if (fails_mid_step) {
      b.fail_finish = true;
      b.step_aside_on_failure = true;
    } else {
      b.available = false;
    }
    const MlpPlacement p = MakePlacement(**model, {&a, &b});
    const std::vector<float> got = RunSteps(*model, &p, &st);
    ASSERT_TRUE(st.ok()) << st.ToString();
    EXPECT_EQ(got, want);
    EXPECT_LE(b.calls.size(), 1u) << "no call reaches an unavailable executor";
  }
}

// When the unavailable experts leave fewer than k_mlp in a layer, the layer routes to those left; with
// none left its MLP block adds nothing, and the step still completes.
TEST(SplitSkip, ALayerWithFewerExpertsLeftRoutesFewer) {
  auto model = RandomModel(DType::kF32);
  ASSERT_NE(model, nullptr);
  ThreadExecutor a(model), b(model);
  b.available = false;
  MlpPlacement p;
  p.executors = {&a, &b};
  p.owner.resize(3);
  p.owner[0].assign(8, 1);                   // all of layer 0 on b: nothing left
  p.owner[1].assign(5, 1);
  p.owner[1][3] = MlpPlacement::kLocal;      // one expert left in layer 1 (k_mlp is 2)
  Status st;
  const std::vector<float> got = RunSteps(model, &p, &st);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_FALSE(got.empty());
  for (float v : got) ASSERT_TRUE(std::isfinite(v));
  EXPECT_TRUE(b.calls.empty());
}

TEST(SplitPlacement, CreateRefusesPlacementsThatDoNotFitTheModel) {
  auto model = RandomModel(DType::kF32);
  ASSERT_NE(model, nullptr);
  ThreadExecutor a(model);
  auto refused = [&](MlpPlacement p, const std::string& what) {
    SessionOptions so{1, 16, 16};
    so.mlp_placement = &p;
    auto s = Session::Create(model, so, nullptr);
    ASSERT_FALSE(s.ok()) << what;
    EXPECT_NE(s.status().message().find(what), std::string::npos) << s.status().message();
  };
  MlpPlacement wrong_count = MakePlacement(*model, {&a, &a});
  wrong_count.owner[0].pop_back();
  refused(wrong_count, "owners for 8 kept experts");
  MlpPlacement bad_index = MakePlacement(*model, {&a, &a});
  bad_index.owner[2][0] = 5;
  refused(bad_index, "names executor 5 of 2");
  refused(MakePlacement(*model, {&a, nullptr}), "null executor");
  MlpPlacement too_many = MakePlacement(*model, {&a, &a});
  too_many.owner.resize(4);
  refused(too_many, "has 4 layers");
}

}  // namespace
}  // namespace brickrt
