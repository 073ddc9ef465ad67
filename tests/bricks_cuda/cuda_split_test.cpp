// A model on the GPU with some MLP experts on executors (CudaSession + CudaExecutorBridge) against the
// CPU Session with the same placement: the same logits (F32, summation order only), one call per layer
// and executor per step, a failed call fails the step with nothing advanced, and executors that are
// unavailable, or step aside after a failed call, leave the routing exactly as on the CPU.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <vector>

#include "bricks/cuda/cuda_model.h"
#include "bricks/cuda/cuda_session.h"
#include "bricks/session.h"
#include "registry/test_model.h"
#include "tests/bricks/split_steps.h"
#include "tests/bricks/thread_executor.h"
#include "tests/bricks_cuda/routing_margin.h"
#include "tests/kernels_cuda/cuda_test_util.h"

namespace brickrt {
namespace {

using testing::MakePlacement;
using testing::RunSteps;
using testing::RunStepsOn;
using testing::ThreadExecutor;

class CudaSplitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (cuda::ListDevices().empty()) GTEST_SKIP() << "no CUDA device on this machine: GPU test skipped";
    // Per-layer expert counts differ (a pruned model), F32 weights.
    const TestModelOptions o{.layers = 3, .d_model = 64, .ffd_hidden = 96, .gating_size = 32, .vocab = 257,
                             .attn_experts_per_layer = {4, 3, 6}, .mlp_experts_per_layer = {8, 5, 7},
                             .dtype = DType::kF32, .seed = 21};
    auto made = MakeRandomModel(o);
    ASSERT_TRUE(made.ok()) << made.status().ToString();
    auto model = Model::Build(made->first, std::move(made->second));
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    model_ = *model;
    auto gpu = CudaModel::Upload(model_, 0);
    ASSERT_TRUE(gpu.ok()) << gpu.status().ToString();
    gpu_ = *gpu;
    // The GPU's F32 GEMMs differ from the CPU's by summation order (~1e-7 of a probability): with every
    // router decision of the test sequences at least 1e-4 from a tie, both pick the same experts.
    for (size_t i = 0; i < testing::StepPrompts().size(); ++i) {
      std::vector<int32_t> tokens = testing::StepPrompts()[i];
      tokens.insert(tokens.end(), 3, testing::StepNextTokens()[i]);
      ASSERT_GE(testing::MinRoutingMargin(*model_, tokens), 1e-4f) << "sequence " << i;
    }
  }

  // RunSteps on the GPU with `placement`.
  std::vector<float> RunOnGpu(const MlpPlacement* placement, Status* error) {
    SessionOptions so{3, 32, 32};
    so.mlp_placement = placement;
    auto session = CudaSession::Create(gpu_, so);
    EXPECT_TRUE(session.ok()) << session.status().ToString();
    if (!session.ok()) return {};
    return RunStepsOn(**session, error);
  }

  // RunSteps with executors (cpu_a, cpu_b) on the CPU and (gpu_a, gpu_b) on the GPU, in the same
  // placement: the GPU's logits must be the CPU's. Returns the CPU's.
  std::vector<float> SplitOnBoth(ThreadExecutor& cpu_a, ThreadExecutor& cpu_b, ThreadExecutor& gpu_a,
                                 ThreadExecutor& gpu_b) {
    const MlpPlacement on_cpu = MakePlacement(*model_, {&cpu_a, &cpu_b});
    const MlpPlacement on_gpu = MakePlacement(*model_, {&gpu_a, &gpu_b});
    Status st;
    const std::vector<float> cpu = RunSteps(model_, &on_cpu, &st);
    EXPECT_TRUE(st.ok()) << st.ToString();
    const std::vector<float> gpu = RunOnGpu(&on_gpu, &st);
    EXPECT_TRUE(st.ok()) << st.ToString();
    ExpectClose(gpu, cpu);
    return cpu;
  }

  static void ExpectClose(const std::vector<float>& gpu, const std::vector<float>& cpu) {
    ASSERT_EQ(gpu.size(), cpu.size());
    for (size_t i = 0; i < cpu.size(); ++i)
      ASSERT_NEAR(gpu[i], cpu[i], 1e-4f * (1 + std::fabs(cpu[i]))) << "logit " << i;
  }

  std::shared_ptr<const Model> model_;
  std::shared_ptr<const CudaModel> gpu_;
};

TEST_F(CudaSplitTest, ExpertsOnExecutorsGiveTheCpuSplitLogitsWithOneCallPerLayerAndExecutor) {
  ThreadExecutor cpu_a(model_), cpu_b(model_), gpu_a(model_), gpu_b(model_);
  const std::vector<float> cpu = SplitOnBoth(cpu_a, cpu_b, gpu_a, gpu_b);
  // Same calls: per step (prefill + 3 decodes), layers 0 and 2, each executor once when it has rows.
  for (auto [g, c] : {std::pair{&gpu_a, &cpu_a}, std::pair{&gpu_b, &cpu_b}}) {
    ASSERT_EQ(g->calls.size(), c->calls.size());
    EXPECT_GE(g->calls.size(), 4u);
    for (size_t i = 0; i < g->calls.size(); ++i) {
      EXPECT_EQ(g->calls[i].layer, c->calls[i].layer);
      EXPECT_EQ(g->calls[i].experts, c->calls[i].experts);
      EXPECT_EQ(g->calls[i].counts, c->calls[i].counts);
    }
  }
  // Without executors the GPU model gives the same logits too (the bridge only moves rows).
  Status st;
  const std::vector<float> plain = RunOnGpu(nullptr, &st);
  ASSERT_TRUE(st.ok()) << st.ToString();
  ExpectClose(plain, cpu);
}

TEST_F(CudaSplitTest, UnavailableExecutorsLeaveTheRoutingAsOnTheCpu) {
  ThreadExecutor cpu_a(model_), cpu_b(model_), gpu_a(model_), gpu_b(model_);
  cpu_b.available = gpu_b.available = false;  // its experts leave layers 0 and 2's routing
  const std::vector<float> cpu = SplitOnBoth(cpu_a, cpu_b, gpu_a, gpu_b);
  EXPECT_TRUE(gpu_b.calls.empty());
  // A failed call whose executor then steps aside: routed again without it, on both.
  ThreadExecutor cpu_c(model_), cpu_d(model_), gpu_c(model_), gpu_d(model_);
  for (ThreadExecutor* e : {&cpu_d, &gpu_d}) e->fail_finish = e->step_aside_on_failure = true;
  const std::vector<float> aside = SplitOnBoth(cpu_c, cpu_d, gpu_c, gpu_d);
  EXPECT_FALSE(gpu_d.available);
  EXPECT_TRUE(aside == cpu);  // on the CPU, stepping aside at the first call is being unavailable from the start
}

// Experts an executor runs need not be on the GPU: a model uploaded without them gives the same logits
// with that placement, takes less device memory, and refuses a session that would leave them unrun.
TEST_F(CudaSplitTest, ExpertsOnExecutorsStayOffTheGpu) {
  ThreadExecutor cpu_a(model_), cpu_b(model_), gpu_a(model_), gpu_b(model_);
  const MlpPlacement on_cpu = MakePlacement(*model_, {&cpu_a, &cpu_b});
  const MlpPlacement on_gpu = MakePlacement(*model_, {&gpu_a, &gpu_b});
  auto partial = CudaModel::Upload(model_, 0, &on_gpu);
  ASSERT_TRUE(partial.ok()) << partial.status().ToString();
  EXPECT_LT((*partial)->device_bytes(), gpu_->device_bytes());
  EXPECT_EQ((*partial)->device_bytes(), CudaModel::PlannedBytes(*model_, &on_gpu));
  EXPECT_FALSE((*partial)->HasMlpExpert(0, 0));  // slot 0 of layer 0 is on executor 0
  EXPECT_TRUE((*partial)->HasMlpExpert(0, 2));   // slot 2 stays on the GPU
  EXPECT_TRUE((*partial)->HasMlpExpert(1, 0));   // layer 1 is all local
  Status st;
  const std::vector<float> cpu = RunSteps(model_, &on_cpu, &st);
  ASSERT_TRUE(st.ok()) << st.ToString();
  SessionOptions so{3, 32, 32};
  so.mlp_placement = &on_gpu;
  auto session = CudaSession::Create(*partial, so);
  ASSERT_TRUE(session.ok()) << session.status().ToString();
  ExpectClose(RunStepsOn(**session, &st), cpu);
  ASSERT_TRUE(st.ok()) << st.ToString();
  so.mlp_placement = nullptr;
  const auto refused = CudaSession::Create(*partial, so);
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("L0.mlp.E0 was left off the GPU"), std::string::npos)
      << refused.status().ToString();
}

// Keeps a copy of every block a session reports (brick run --trace's source).
class RecordingSink : public TraceSink {
 public:
  struct Block {
    int64_t layer, n;
    bool attention;
    int k;
    std::vector<int32_t> seq, tokens, slots;
    std::vector<int64_t> pos, ids;
    std::vector<float> gates;
    std::vector<int32_t> owner;  // empty: all local
  };
  void OnBlock(const BlockTrace& t) override {
    const auto n = static_cast<size_t>(t.n), nk = static_cast<size_t>(t.n * t.k);
    blocks.push_back({t.layer, t.n, t.attention, t.k, {t.seq, t.seq + n}, {t.tokens, t.tokens + n},
                      {t.slots, t.slots + nk}, {t.pos, t.pos + n}, *t.ids, {t.gates, t.gates + nk},
                      t.owner != nullptr ? *t.owner : std::vector<int32_t>{}});
    EXPECT_GE(t.seconds, 0.0);
  }
  std::vector<Block> blocks;
};

// --trace on a GPU: every block of every step reports the CPU session's routing (same slots, gates
// within rounding), rows, tokens and, for split layers, who ran each expert.
TEST_F(CudaSplitTest, TheTraceReportsTheCpuRouting) {
  ThreadExecutor cpu_a(model_), cpu_b(model_), gpu_a(model_), gpu_b(model_);
  const MlpPlacement cpu_placement = MakePlacement(*model_, {&cpu_a, &cpu_b});
  const MlpPlacement gpu_placement = MakePlacement(*model_, {&gpu_a, &gpu_b});
  RecordingSink cpu_sink, gpu_sink;
  SessionOptions so{3, 32, 32};
  so.mlp_placement = &cpu_placement;
  so.trace = &cpu_sink;
  auto cpu = Session::Create(model_, so, nullptr);
  ASSERT_TRUE(cpu.ok()) << cpu.status().ToString();
  so.mlp_placement = &gpu_placement;
  so.trace = &gpu_sink;
  auto gpu = CudaSession::Create(gpu_, so);
  ASSERT_TRUE(gpu.ok()) << gpu.status().ToString();
  Status st;
  const std::vector<float> want = RunStepsOn(**cpu, &st);
  ASSERT_TRUE(st.ok()) << st.ToString();
  const std::vector<float> got = RunStepsOn(**gpu, &st);
  ASSERT_TRUE(st.ok()) << st.ToString();
  ExpectClose(got, want);
  ASSERT_EQ(gpu_sink.blocks.size(), cpu_sink.blocks.size());
  ASSERT_EQ(gpu_sink.blocks.size(), 4u * 3 * 2);  // 4 steps × 3 layers × 2 blocks
  for (size_t i = 0; i < cpu_sink.blocks.size(); ++i) {
    const RecordingSink::Block &g = gpu_sink.blocks[i], &c = cpu_sink.blocks[i];
    SCOPED_TRACE("block " + std::to_string(i));
    EXPECT_EQ(g.layer, c.layer);
    EXPECT_EQ(g.attention, c.attention);
    EXPECT_EQ(g.n, c.n);
    EXPECT_EQ(g.k, c.k);
    EXPECT_EQ(g.seq, c.seq);
    EXPECT_EQ(g.pos, c.pos);
    EXPECT_EQ(g.tokens, c.tokens);
    EXPECT_EQ(g.slots, c.slots);
    EXPECT_EQ(g.ids, c.ids);
    EXPECT_EQ(g.owner, c.owner);
    ASSERT_EQ(g.gates.size(), c.gates.size());
    for (size_t j = 0; j < c.gates.size(); ++j) EXPECT_NEAR(g.gates[j], c.gates[j], 1e-5f);
  }
}

TEST_F(CudaSplitTest, AFailedCallFailsTheStepAndNothingAdvances) {
  ThreadExecutor a(model_), b(model_);
  const MlpPlacement placement = MakePlacement(*model_, {&a, &b});
  SessionOptions so{2, 32, 32};
  so.mlp_placement = &placement;
  auto session = CudaSession::Create(gpu_, so);
  ASSERT_TRUE(session.ok()) << session.status().ToString();
  CudaSession& s = **session;
  const int seq = *s.AddSequence();
  const std::vector<int32_t> prompt = {5, 17, 99, 3};
  std::vector<float> logits(static_cast<size_t>(model_->config().vocab_size));
  b.fail_finish = true;  // fails, stays available: the step fails
  const SequenceChunk chunk{seq, prompt};
  const Status st = s.Forward({&chunk, 1}, false, logits.data());
  EXPECT_EQ(st.code(), StatusCode::kUnavailable) << st.ToString();
  EXPECT_NE(st.message().find("did not answer"), std::string::npos) << st.ToString();
  EXPECT_EQ(s.Length(seq), 0);
  b.fail_finish = false;  // the next step runs as if nothing had happened
  ASSERT_TRUE(s.Forward({&chunk, 1}, false, logits.data()).ok());
  EXPECT_EQ(s.Length(seq), 4);
  // A bad placement is refused at Create.
  MlpPlacement bad = placement;
  bad.owner[0].pop_back();
  so.mlp_placement = &bad;
  EXPECT_EQ(CudaSession::Create(gpu_, so).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace brickrt
