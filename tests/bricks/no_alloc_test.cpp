// Decode steps do not allocate: a counting global operator new (this test is its own binary so the
// override affects nothing else) sees zero allocations across Session::Forward decode calls, with
// and without a thread pool, once the session exists; also with LoRA plugins attached (their scratch
// grows in the first step, then is reused).
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>

#include "bricks/sampler.h"
#include "bricks/blocks.h"
#include "bricks/session.h"
#include "lora_util.h"
#include "registry/test_model.h"

namespace {
std::atomic<bool> g_counting{false};
std::atomic<int64_t> g_allocations{0};
}  // namespace

void* operator new(size_t n) {
  if (g_counting.load(std::memory_order_relaxed)) g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }

namespace brickrt {
namespace {

class NoAllocTest : public ::testing::TestWithParam<std::tuple<int, bool>> {};

TEST_P(NoAllocTest, DecodeStepsDoNotAllocate) {
  TestModelOptions o;
  o.layers = 2;
  o.d_model = 64;
  o.ffd_hidden = 96;
  o.gating_size = 32;
  o.vocab = 300;
  o.attn_experts = 4;
  o.mlp_experts = 8;
  auto made = MakeRandomModel(o);
  ASSERT_TRUE(made.ok());
  const auto [threads, with_lora] = GetParam();
  std::vector<LoraAttachment> loras;
  if (with_lora) {
    loras = {{testing::MakeLora("L0.attn.E1.wq", 8, 64, 64, DType::kBF16, 16, 1), 1.0},
             {testing::MakeLora("L1.mlp.E3.w2", 4, 96, 64, DType::kBF16, 8, 2), 1.0},
             {testing::MakeLora("lm_head.weight", 16, 64, 300, DType::kF32, 16, 3), 1.0}};
  }
  auto model = Model::Build(made->first, made->second, loras);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  std::unique_ptr<ThreadPool> pool = threads > 0 ? std::make_unique<ThreadPool>(threads) : nullptr;
  Session s(*model, SessionOptions{2, 64, 64}, pool.get());
  const int a = *s.AddSequence(), b = *s.AddSequence();
  const std::vector<int32_t> pa = {1, 2, 3, 4, 5}, pb = {7, 8};
  std::vector<float> logits(2 * 300);
  const SequenceChunk prefill[2] = {{a, pa}, {b, pb}};
  ASSERT_TRUE(s.Forward(prefill, false, logits.data()).ok());
  Sampler greedy(SamplingParams{0.0f, 0, 1.0f, 0}, 300);
  int32_t next[2];
  SequenceChunk step[2] = {{a, {}}, {b, {}}};
  // One warm-up step: grow-once scratch (per-thread GEMV partials) reaches its steady size here.
  for (int i = 0; i < 2; ++i) {
    next[i] = greedy.Sample(&logits[static_cast<size_t>(i) * 300]);
    step[i].tokens = {&next[i], 1};
  }
  ASSERT_TRUE(s.Forward(step, false, logits.data()).ok());

  g_allocations = 0;
  g_counting = true;
  for (int t = 0; t < 20; ++t) {
    for (int i = 0; i < 2; ++i) next[i] = greedy.Sample(&logits[static_cast<size_t>(i) * 300]);
    if (!s.Forward(step, false, logits.data()).ok()) break;
  }
  g_counting = false;
  EXPECT_EQ(g_allocations.load(), 0);
  EXPECT_EQ(s.Length(a), 5 + 21);
}

// Computes the call's experts in Finish with a buffer sized up front: the split path's own work (the
// gathers, the call, the combine) must not allocate either.
class SyncExecutor : public ExpertExecutor {
 public:
  SyncExecutor(std::shared_ptr<const Model> m, int64_t max_rows)
      : model_(std::move(m)), mid_(static_cast<size_t>(max_rows * model_->config().ffd_hidden)) {}
  Status Start(const ExpertCall& call) override {
    call_ = call;
    return Status::Ok();
  }
  Status Finish() override {
    return RunExpertCallLocally(model_->layers()[static_cast<size_t>(call_.layer)], call_, mid_.data());
  }

 private:
  std::shared_ptr<const Model> model_;
  std::vector<float> mid_;
  ExpertCall call_;
};

TEST(NoAllocSplit, SplitDecodeStepsDoNotAllocate) {
  TestModelOptions o;
  o.layers = 2;
  o.d_model = 64;
  o.ffd_hidden = 96;
  o.gating_size = 32;
  o.vocab = 300;
  o.attn_experts = 4;
  o.mlp_experts = 8;
  auto made = MakeRandomModel(o);
  ASSERT_TRUE(made.ok());
  auto model = Model::Build(made->first, made->second);
  ASSERT_TRUE(model.ok());
  SyncExecutor ex(*model, 64);
  MlpPlacement p;
  p.executors = {&ex};
  p.owner = {{0, MlpPlacement::kLocal, 0, 0, MlpPlacement::kLocal, 0, 0, 0}, {0, 0, 0, 0, 0, 0, 0, 0}};
  SessionOptions so{1, 64, 64};
  so.mlp_placement = &p;
  Session s(*model, so, nullptr);
  const int a = *s.AddSequence();
  const std::vector<int32_t> prompt = {1, 2, 3, 4, 5};
  std::vector<float> logits(300);
  const SequenceChunk prefill{a, prompt};
  ASSERT_TRUE(s.Forward({&prefill, 1}, false, logits.data()).ok());
  int32_t next = 7;
  const SequenceChunk step{a, {&next, 1}};
  ASSERT_TRUE(s.Forward({&step, 1}, false, logits.data()).ok());
  g_allocations = 0;
  g_counting = true;
  for (int t = 0; t < 20; ++t) {
    if (!s.Forward({&step, 1}, false, logits.data()).ok()) break;
  }
  g_counting = false;
  EXPECT_EQ(g_allocations.load(), 0);
  EXPECT_EQ(s.Length(a), 5 + 21);
}

INSTANTIATE_TEST_SUITE_P(ThreadsAndLoras, NoAllocTest,
                         ::testing::Combine(::testing::Values(0, 1, 2), ::testing::Bool()));

}  // namespace
}  // namespace brickrt
