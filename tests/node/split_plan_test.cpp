// A spec's placement executed (issue #5): PlanSplit connects to a BrickServer on tcp loopback and the
// split submodel computes exactly what the all-local one does; what cannot run on a node yet is
// refused naming it; with local-fallback a dead node costs nothing but a warning.
#include "node/split.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include "bricks/blocks.h"
#include "bricks/session.h"
#include "core/submodel_spec.h"
#include "node/brick_server.h"
#include "node/submodel.h"
#include "registry/test_model.h"

namespace brickrt {
namespace {

class SplitPlanTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = ::testing::TempDir() + "/split_plan_test_" + std::to_string(getpid()) + ".db";
    TestModelOptions o;
    o.layers = 2;
    o.d_model = 64;
    o.ffd_hidden = 96;
    o.gating_size = 32;
    o.vocab = 257;
    o.attn_experts = 4;
    o.mlp_experts = 6;
    o.dtype = DType::kBF16;
    o.seed = 5;
    auto made = MakeRandomModel(o);
    ASSERT_TRUE(made.ok());
    auto reg = Registry::Open(path_);
    ASSERT_TRUE(reg.ok()) << reg.status().ToString();
    reg_ = std::move(reg).value();
    ASSERT_TRUE(reg_->Import("m", made->first, made->second, Visibility::kShared, "t").ok());
    server_ = StartNode("tcp://127.0.0.1:*");
    ASSERT_NE(server_, nullptr);
  }

  // The node 'cloud' serving m's MLP experts on `listen` (a restarted node binds the old endpoint).
  std::unique_ptr<BrickServer> StartNode(const std::string& listen) const {
    BrickServerOptions o;
    o.registry_path = path_;
    o.listen = listen;
    o.serve = {"m/L*.mlp.E*"};
    o.name = "cloud";
    auto server = BrickServer::Start(o);
    EXPECT_TRUE(server.ok()) << server.status().ToString();
    return server.ok() ? std::move(server).value() : nullptr;
  }
  void TearDown() override {
    server_.reset();
    reg_.reset();
    for (const char* suffix : {"", "-wal", "-shm"}) std::remove((path_ + suffix).c_str());
  }

  std::string Spec(const std::string& rules, const std::string& on_failure = "fail",
                   const std::string& extra = "") const {
    return "model: m\n" + extra + "placement:\n  nodes:\n    cloud: {endpoint: \"" + server_->endpoint() +
           "\", timeout_ms: 300}\n  rules:\n" + rules + "  on_failure: " + on_failure + "\n";
  }

  Result<std::unique_ptr<SplitPlan>> Plan(const std::string& yaml) {
    BRICK_ASSIGN_OR_RETURN(SubmodelSpec spec, ParseSubmodelSpec(yaml, "spec.yaml"));
    BRICK_ASSIGN_OR_RETURN(Composition c, Compose(*reg_, spec));
    BRICK_ASSIGN_OR_RETURN(LoadedModel loaded, LoadComposition(*reg_, c));
    return PlanSplit(c, loaded.model);
  }

  Result<std::vector<float>> Logits(const std::string& yaml, std::vector<std::string>* nodes = nullptr) {
    BRICK_ASSIGN_OR_RETURN(SubmodelSpec spec, ParseSubmodelSpec(yaml, "spec.yaml"));
    BRICK_ASSIGN_OR_RETURN(Composition c, Compose(*reg_, spec));
    BRICK_ASSIGN_OR_RETURN(LoadedModel loaded, LoadComposition(*reg_, c));
    BRICK_ASSIGN_OR_RETURN(std::unique_ptr<SplitPlan> plan, PlanSplit(c, loaded.model));
    if (nodes != nullptr) *nodes = plan->nodes;
    SessionOptions so{2, 32, 32};
    if (!plan->executors.empty()) so.mlp_placement = &plan->placement;
    BRICK_ASSIGN_OR_RETURN(auto session, Session::Create(loaded.model, so, nullptr));
    const std::vector<int32_t> a = {3, 1, 4, 1, 5, 9, 2, 6}, b = {27, 18};
    std::vector<SequenceChunk> chunks = {{*session->AddSequence(), a}, {*session->AddSequence(), b}};
    std::vector<float> logits(static_cast<size_t>(10 * 257));
    BRICK_RETURN_IF_ERROR(session->Forward(chunks, true, logits.data()));
    return logits;
  }

  std::string path_;
  std::unique_ptr<Registry> reg_;
  std::unique_ptr<BrickServer> server_;
};

// Where this process computes (issue #8): the whole model on one device, or MLP experts on a GPU
// beside a model on the CPU; what does not run yet is refused naming the brick.
TEST_F(SplitPlanTest, DevicesOfThisProcess) {
  auto gpu = Plan("model: m\nplacement: {device: cuda:0}\n");
  ASSERT_TRUE(gpu.ok()) << gpu.status().ToString();
  EXPECT_EQ((*gpu)->device, (DeviceRef{DeviceRef::Kind::kCuda, 0}));
  EXPECT_TRUE((*gpu)->executors.empty());  // nothing leaves the GPU the model runs on
  auto cpu = Plan("model: m\nplacement:\n  rules: [{match: \"*\", on: cpu}]\n");
  ASSERT_TRUE(cpu.ok()) << cpu.status().ToString();
  EXPECT_EQ((*cpu)->device, DeviceRef{});
  EXPECT_TRUE((*cpu)->executors.empty());

  auto torn = Plan("model: m\nplacement:\n  rules: [{match: \"L0.attn.*\", on: cuda:0}]\n");
  ASSERT_FALSE(torn.ok());
  EXPECT_EQ(torn.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(torn.status().message().find("run on one device for now"), std::string::npos) << torn.status().ToString();
  // A model on a GPU keeps a private expert on the CPU: one CPU executor owns exactly it.
  auto away = Plan("model: m\nplacement:\n  device: cuda:0\n  rules: [{match: \"L0.mlp.E1\", on: cpu}]\n");
  ASSERT_TRUE(away.ok()) << away.status().ToString();
  EXPECT_EQ((*away)->device, (DeviceRef{DeviceRef::Kind::kCuda, 0}));
  EXPECT_EQ((*away)->nodes, (std::vector<std::string>{"cpu"}));
  ASSERT_EQ((*away)->placement.owner.size(), 2u);
  EXPECT_EQ((*away)->placement.owner[0], (std::vector<int32_t>{-1, 0, -1, -1, -1, -1}));
  EXPECT_TRUE((*away)->placement.owner[1].empty());
  auto second_gpu = Plan("model: m\nplacement:\n  device: cuda:0\n  rules: [{match: \"L0.mlp.E1\", on: cuda:1}]\n");
  ASSERT_FALSE(second_gpu.ok());
  EXPECT_EQ(second_gpu.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(second_gpu.status().message().find("a model uses one GPU for now"), std::string::npos)
      << second_gpu.status().ToString();

  // MLP experts of layer 1 on a GPU beside a model on the CPU: one executor, named for the trace, that
  // owns exactly those experts. Without a GPU (or without CUDA in the build) the error says which.
  // ("cuda" and "cuda:0" name one GPU: one executor.)
  auto mixed = Plan(
      "model: m\nplacement:\n  rules: [{match: \"L1.mlp.E0\", on: cuda}, {match: \"L1.mlp.E*\", on: cuda:0}]\n");
  if (!mixed.ok()) {
    EXPECT_TRUE(mixed.status().code() == StatusCode::kUnavailable || mixed.status().code() == StatusCode::kUnsupported)
        << mixed.status().ToString();
    EXPECT_NE(mixed.status().message().find("cuda:0"), std::string::npos) << mixed.status().ToString();
    return;
  }
  EXPECT_EQ((*mixed)->device, DeviceRef{});
  EXPECT_EQ((*mixed)->nodes, (std::vector<std::string>{"cuda:0"}));
  ASSERT_EQ((*mixed)->placement.owner.size(), 2u);
  EXPECT_TRUE((*mixed)->placement.owner[0].empty());
  EXPECT_EQ((*mixed)->placement.owner[1], std::vector<int32_t>(6, 0));
}

TEST_F(SplitPlanTest, ExpertsOnTheNodeGiveTheLocalLogitsBitForBit) {
  auto local = Logits("model: m\n");
  ASSERT_TRUE(local.ok()) << local.status().ToString();
  std::vector<std::string> nodes;
  auto split = Logits(Spec("    - {match: \"L0.mlp.E?\", on: local}\n    - {match: \"L*.mlp.E*\", on: cloud}\n"), &nodes);
  ASSERT_TRUE(split.ok()) << split.status().ToString();
  EXPECT_EQ(nodes, (std::vector<std::string>{"cloud"}));
  EXPECT_TRUE(*split == *local);
  auto all = Logits(Spec("    - {match: \"m/L*.mlp.E*\", on: cloud}\n"));
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_TRUE(*all == *local);
}

TEST_F(SplitPlanTest, WhatCannotRunOnANodeYetIsRefusedNamingIt) {
  auto attn = Logits(Spec("    - {match: \"L0.attn.E1\", on: cloud}\n"));
  ASSERT_FALSE(attn.ok());
  EXPECT_EQ(attn.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(attn.status().message().find("m/L0.attn.E1@1 (attn_expert)"), std::string::npos) << attn.status().ToString();
}

TEST_F(SplitPlanTest, ADeadNodeFailsTheRunOrFallsBackLocally) {
  auto local = Logits("model: m\n");
  ASSERT_TRUE(local.ok());
  const std::string rules = "    - {match: \"L*.mlp.E*\", on: cloud}\n";
  const std::string fail_spec = Spec(rules), fallback_spec = Spec(rules, "local-fallback");
  server_->Stop();
  auto failed = Logits(fail_spec);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().code(), StatusCode::kUnavailable) << failed.status().ToString();
  EXPECT_NE(failed.status().message().find("node 'cloud'"), std::string::npos) << failed.status().ToString();
  auto fell_back = Logits(fallback_spec);
  ASSERT_TRUE(fell_back.ok()) << fell_back.status().ToString();
  EXPECT_TRUE(*fell_back == *local);
}

// skip-expert: with the node down its experts leave the routing, so the split computes exactly what
// the submodel that drops them computes; with the node up, what the full model computes.
TEST_F(SplitPlanTest, SkipExpertDropsADeadNodesExpertsFromTheRouting) {
  const std::string rules = "    - {match: \"L*.mlp.E0\", on: cloud}\n    - {match: \"L*.mlp.E2\", on: cloud}\n"
                            "    - {match: \"L1.mlp.E5\", on: cloud}\n";
  const std::string spec = Spec(rules, "skip-expert");
  auto local = Logits("model: m\n");
  ASSERT_TRUE(local.ok());
  auto up = Logits(spec);
  ASSERT_TRUE(up.ok()) << up.status().ToString();
  EXPECT_TRUE(*up == *local);
  auto dropped = Logits("model: m\nexperts:\n  mlp:\n    drop: {0: [0, 2], 1: [0, 2, 5]}\n");
  ASSERT_TRUE(dropped.ok()) << dropped.status().ToString();
  EXPECT_FALSE(*dropped == *local);
  server_->Stop();
  auto down = Logits(spec);
  ASSERT_TRUE(down.ok()) << down.status().ToString();
  EXPECT_TRUE(*down == *dropped) << "a dead node's experts are dropped from the routing";
}

// Runs a call on the model's own experts in process, and is available while `up` (the reference for
// what skip-expert computes step by step).
class ToggledLocalExecutor : public ExpertExecutor {
 public:
  explicit ToggledLocalExecutor(std::shared_ptr<const Model> model) : model_(std::move(model)) {}
  Status Start(const ExpertCall& call) override {
    std::vector<float> mid(static_cast<size_t>(32 * model_->config().ffd_hidden));
    return RunExpertCallLocally(model_->layers()[static_cast<size_t>(call.layer)], call, mid.data());
  }
  Status Finish() override { return Status::Ok(); }
  bool Available() override { return up; }
  bool up = true;

 private:
  std::shared_ptr<const Model> model_;
};

// The node dies between steps: the next step's call times out, the layer is routed again without the
// node's experts (no error), later steps skip them without waiting, and once the node is back they
// return. Every step's logits equal those of an in-process executor that is unavailable for the
// same steps.
TEST_F(SplitPlanTest, SkipExpertSurvivesANodeDyingMidRunAndUsesItWhenBack) {
  const std::string endpoint = server_->endpoint();
  const std::string yaml =
      Spec("    - {match: \"L*.mlp.E1\", on: cloud}\n    - {match: \"L*.mlp.E4\", on: cloud}\n", "skip-expert");
  auto spec = ParseSubmodelSpec(yaml, "spec.yaml");
  ASSERT_TRUE(spec.ok());
  auto c = Compose(*reg_, *spec);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  auto loaded = LoadComposition(*reg_, *c);
  ASSERT_TRUE(loaded.ok());
  auto plan = PlanSplit(*c, loaded->model);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  ToggledLocalExecutor reference(loaded->model);
  MlpPlacement ref_placement = (*plan)->placement;
  ref_placement.executors = {&reference};
  struct Run {
    std::unique_ptr<Session> session;
    int seq = 0;
  };
  auto start = [&](const MlpPlacement* p) {
    SessionOptions so{1, 64, 16};
    so.mlp_placement = p;
    auto s = Session::Create(loaded->model, so, nullptr);
    EXPECT_TRUE(s.ok());
    Run r{std::move(s).value(), 0};
    r.seq = *r.session->AddSequence();
    return r;
  };
  Run node = start(&(*plan)->placement), ref = start(&ref_placement);
  const std::vector<int32_t> prompt = {3, 1, 4, 1, 5, 9, 2, 6};
  std::vector<float> got(257), want(257);
  auto step = [&](std::span<const int32_t> tokens) {
    const SequenceChunk a{node.seq, tokens}, b{ref.seq, tokens};
    ASSERT_TRUE(node.session->Forward({&a, 1}, false, got.data()).ok()) << "skip-expert never fails the step";
    ASSERT_TRUE(ref.session->Forward({&b, 1}, false, want.data()).ok());
    EXPECT_TRUE(got == want);
  };
  const NodeCallStats& stats = *(*plan)->node_stats.at(0);
  step(prompt);
  EXPECT_EQ(stats.remote, 2);

  server_->Stop();
  server_.reset();
  reference.up = false;
  const int32_t next = 7;
  const auto t0 = std::chrono::steady_clock::now();
  step({&next, 1});
  step({&next, 1});
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(900))
      << "one timeout (300 ms), then no call waits for the dead node";
  EXPECT_EQ(stats.remote, 2);
  EXPECT_GE(stats.skipped, 2);

  auto back = StartNode(endpoint);  // the same port
  ASSERT_NE(back, nullptr);
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  reference.up = true;
  step({&next, 1});
  EXPECT_GE(stats.remote, 3) << "the node is back: its experts run there again";
  back->Stop();
}

// A node that is down when the run starts: with local-fallback the experts run locally, and once the
// node is back (asked again at most once a second) its experts run there — same logits throughout.
TEST_F(SplitPlanTest, FallbackReconnectsWhenTheNodeComesUp) {
  auto local = Logits("model: m\n");
  ASSERT_TRUE(local.ok());
  const std::string endpoint = server_->endpoint();
  const std::string yaml = Spec("    - {match: \"L*.mlp.E*\", on: cloud}\n", "local-fallback");
  server_->Stop();
  server_.reset();
  auto spec = ParseSubmodelSpec(yaml, "spec.yaml");
  ASSERT_TRUE(spec.ok());
  auto c = Compose(*reg_, *spec);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  auto loaded = LoadComposition(*reg_, *c);
  ASSERT_TRUE(loaded.ok());
  auto plan = PlanSplit(*c, loaded->model);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  SessionOptions so{1, 64, 16};
  so.mlp_placement = &(*plan)->placement;
  auto session = Session::Create(loaded->model, so, nullptr);
  ASSERT_TRUE(session.ok());
  const int seq = *(*session)->AddSequence();
  const std::vector<int32_t> a = {3, 1, 4, 1, 5, 9, 2, 6};
  std::vector<float> out(257);
  const SequenceChunk first{seq, a};
  ASSERT_TRUE((*session)->Forward({&first, 1}, false, out.data()).ok());  // all local: node down
  ASSERT_EQ((*plan)->node_stats.size(), 1u);
  const NodeCallStats& stats = *(*plan)->node_stats[0];
  EXPECT_EQ(stats.remote, 0);
  EXPECT_EQ(stats.local, 2);  // one call per layer

  auto back = StartNode(endpoint);  // the same port
  ASSERT_NE(back, nullptr);
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  int32_t next = 7;
  const SequenceChunk step{seq, {&next, 1}};
  ASSERT_TRUE((*session)->Forward({&step, 1}, false, out.data()).ok());  // reconnects, runs on the node
  EXPECT_EQ(stats.remote, 2) << "the node is back: both layers' calls ran there";
  EXPECT_EQ(stats.local, 2);
  // The same two steps all local.
  SessionOptions lo{1, 64, 16};
  auto plain = Session::Create(loaded->model, lo, nullptr);
  ASSERT_TRUE(plain.ok());
  const int pseq = *(*plain)->AddSequence();
  std::vector<float> want(257);
  const SequenceChunk pfirst{pseq, a}, pstep{pseq, {&next, 1}};
  ASSERT_TRUE((*plain)->Forward({&pfirst, 1}, false, want.data()).ok());
  ASSERT_TRUE((*plain)->Forward({&pstep, 1}, false, want.data()).ok());
  EXPECT_TRUE(out == want);
  back->Stop();
}

}  // namespace
}  // namespace brickrt
