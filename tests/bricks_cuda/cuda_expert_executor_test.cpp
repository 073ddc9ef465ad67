// MLP experts on the GPU (CudaExpertExecutor) against the same experts on the CPU: one call directly,
// and a whole session whose MLP block sends some experts to the GPU and runs the rest on the CPU.
// Built against the host emulation of the CUDA kernels (runs everywhere) and against the real kernels
// (skips without a GPU).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <random>
#include <vector>

#include "bricks/blocks.h"
#include "bricks/cuda/cuda_expert_executor.h"
#include "registry/test_model.h"
#include "tests/bricks/split_steps.h"
#include "tests/kernels_cuda/cuda_test_util.h"

namespace brickrt {
namespace {

TestModelOptions SmallModel(DType dtype) {
  return {.layers = 2, .d_model = 64, .ffd_hidden = 96, .gating_size = 16, .vocab = 256, .attn_experts = 4,
          .mlp_experts = 8, .dtype = dtype, .seed = 7};
}

std::shared_ptr<const Model> BuildModel(const TestModelOptions& o, std::vector<LoraAttachment> loras = {}) {
  auto made = MakeRandomModel(o);
  EXPECT_TRUE(made.ok()) << made.status().ToString();
  auto model = Model::Build(made->first, std::move(made->second), std::move(loras));
  EXPECT_TRUE(model.ok()) << model.status().ToString();
  return model.ok() ? *model : nullptr;
}

// Every kept slot of every layer.
std::vector<std::vector<int64_t>> AllSlots(const Model& m) {
  std::vector<std::vector<int64_t>> slots(m.layers().size());
  for (size_t l = 0; l < slots.size(); ++l)
    for (size_t s = 0; s < m.layers()[l].mlp.size(); ++s) slots[l].push_back(static_cast<int64_t>(s));
  return slots;
}

std::unique_ptr<CudaExpertExecutor> MakeExecutor(std::shared_ptr<const Model> model,
                                                 const std::vector<std::vector<int64_t>>& slots) {
  auto ex = CudaExpertExecutor::Create(std::move(model), slots, 0);
  EXPECT_TRUE(ex.ok()) << ex.status().ToString();
  return ex.ok() ? std::move(ex).value() : nullptr;
}

std::vector<float> RandomRows(int64_t n, int64_t D, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(n * D));
  for (float& x : v) x = nd(rng);
  return v;
}

class CudaExpertExecutorTest : public ::testing::TestWithParam<DType> {};

// One call with three experts of layer 1 (uneven counts) equals RunExpertCallLocally. F32 weights: the
// GEMMs differ from the CPU's only in summation order. BF16 weights: the GPU rounds x (and the GELU
// output) to BF16 before each GEMM, a relative error of 2⁻⁹ per product, so outputs differ by up to
// about 2⁻⁸ of their scale.
TEST_P(CudaExpertExecutorTest, OneCallEqualsTheCpuExperts) {
  BRICK_REQUIRE_CUDA_DEVICE();
  auto model = BuildModel(SmallModel(GetParam()));
  ASSERT_NE(model, nullptr);
  auto ex = MakeExecutor(model, AllSlots(*model));
  ASSERT_NE(ex, nullptr);
  EXPECT_EQ(ex->experts(), 16);
  EXPECT_GT(ex->weight_bytes(), 0);
  const int64_t D = model->config().n_embd;
  const std::vector<int64_t> experts = {0, 3, 7};
  const std::vector<int32_t> counts = {5, 1, 17};
  const int64_t rows = 23;
  const std::vector<float> x = RandomRows(rows, D, 3);
  std::vector<float> gpu(x.size(), NAN), cpu(x.size());
  ExpertCall call{1, D, experts, counts, x.data(), gpu.data()};
  ASSERT_TRUE(ex->Start(call).ok());
  ASSERT_TRUE(ex->Finish().ok());
  std::vector<float> mid(static_cast<size_t>(rows * model->config().ffd_hidden));
  ExpertCall local = call;
  local.out = cpu.data();
  ASSERT_TRUE(RunExpertCallLocally(model->layers()[1], local, mid.data()).ok());
  float scale = 0;
  for (float v : cpu) scale = std::max(scale, std::fabs(v));
  const float tol = GetParam() == DType::kF32 ? 1e-5f * (1 + scale) : 8e-3f * (1 + scale);
  for (size_t i = 0; i < cpu.size(); ++i) ASSERT_NEAR(gpu[i], cpu[i], tol) << "element " << i;
}

// A session whose MLP block runs half of each layer's experts on the GPU gives the all-CPU logits,
// over a ragged prefill and three batched decode steps (the buffers grow once, then are reused).
TEST_P(CudaExpertExecutorTest, MixedCpuGpuSessionEqualsCpuSession) {
  BRICK_REQUIRE_CUDA_DEVICE();
  auto model = BuildModel(SmallModel(GetParam()));
  ASSERT_NE(model, nullptr);
  std::vector<std::vector<int64_t>> slots = {{1, 3, 5, 7}, {0, 1, 2, 3}};
  auto ex = MakeExecutor(model, slots);
  ASSERT_NE(ex, nullptr);
  MlpPlacement placement;
  placement.executors = {ex.get()};
  placement.owner.assign(2, std::vector<int32_t>(8, MlpPlacement::kLocal));
  for (size_t l = 0; l < slots.size(); ++l)
    for (int64_t s : slots[l]) placement.owner[l][static_cast<size_t>(s)] = 0;
  Status st;
  const std::vector<float> cpu = testing::RunSteps(model, nullptr, &st);
  ASSERT_TRUE(st.ok()) << st.ToString();
  const std::vector<float> mixed = testing::RunSteps(model, &placement, &st);
  ASSERT_TRUE(st.ok()) << st.ToString();
  ASSERT_EQ(mixed.size(), cpu.size());
  const int64_t reserved = ex->activation_bytes();
  EXPECT_GT(reserved, 0);
  // Logits are O(1); F32: summation order only. BF16: the x rounding above, through two layers.
  const float tol = GetParam() == DType::kF32 ? 2e-4f : 5e-2f;
  double worst = 0;
  for (size_t i = 0; i < cpu.size(); ++i) worst = std::max(worst, static_cast<double>(std::fabs(mixed[i] - cpu[i])));
  EXPECT_LE(worst, tol);
}

INSTANTIATE_TEST_SUITE_P(Dtypes, CudaExpertExecutorTest, ::testing::Values(DType::kF32, DType::kBF16));

TEST(CudaExpertExecutor, RefusesWhatItCannotRun) {
  BRICK_REQUIRE_CUDA_DEVICE();
  auto model = BuildModel(SmallModel(DType::kF32));
  ASSERT_NE(model, nullptr);
  EXPECT_EQ(CudaExpertExecutor::Create(model, {{0}, {8}}, 0).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(CudaExpertExecutor::Create(model, {{}, {}, {0}}, 0).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(CudaExpertExecutor::Create(model, {{0}}, 63).status().code(), StatusCode::kUnavailable);

  auto ex = MakeExecutor(model, {{2}});
  ASSERT_NE(ex, nullptr);
  const int64_t D = model->config().n_embd;
  const std::vector<float> x = RandomRows(2, D, 1);
  std::vector<float> y(x.size());
  const std::vector<int64_t> not_here = {3};
  const std::vector<int64_t> here = {2};
  const std::vector<int32_t> two = {2};
  // An expert that was not uploaded, another layer, a wrong width: refused before anything runs.
  Status st = ex->Start({0, D, not_here, two, x.data(), y.data()});
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("L0.mlp.E3 is not on cuda:0"), std::string::npos) << st.ToString();
  EXPECT_EQ(ex->Start({1, D, here, two, x.data(), y.data()}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ex->Start({0, D + 1, here, two, x.data(), y.data()}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ex->Finish().code(), StatusCode::kInternal);  // nothing in flight
  // Still usable afterwards.
  ASSERT_TRUE(ex->Start({0, D, here, two, x.data(), y.data()}).ok());
  EXPECT_TRUE(ex->Finish().ok());
}

// An expert carrying LoRA deltas (on W1 and W2) runs on the GPU with them: the CPU expert's answer.
TEST(CudaExpertExecutor, AppliesTheExpertsLoras) {
  BRICK_REQUIRE_CUDA_DEVICE();
  const TestModelOptions o = SmallModel(DType::kF32);
  auto made = MakeRandomModel(o);
  ASSERT_TRUE(made.ok());
  auto loras = MakeRandomLoras(made->first, {.targets = "L1.mlp.E2.w1,L1.mlp.E2.w2", .rank = 4, .dtype = DType::kF32});
  ASSERT_TRUE(loras.ok()) << loras.status().ToString();
  std::vector<LoraAttachment> attach;
  for (BrickData& b : *loras) attach.push_back({std::move(b), 0.5});
  auto model = Model::Build(made->first, std::move(made->second), std::move(attach));
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  auto ex = MakeExecutor(*model, {{}, {1, 2}});
  ASSERT_NE(ex, nullptr);
  EXPECT_TRUE(ex->AppliesLoras());
  const int64_t D = o.d_model;
  const std::vector<int64_t> experts = {1, 2};
  const std::vector<int32_t> counts = {3, 5};
  const std::vector<float> x = RandomRows(8, D, 5);
  std::vector<float> gpu(x.size(), NAN), cpu(x.size());
  ASSERT_TRUE(ex->Start({1, D, experts, counts, x.data(), gpu.data()}).ok());
  ASSERT_TRUE(ex->Finish().ok());
  std::vector<float> mid(static_cast<size_t>(8 * o.ffd_hidden)), lora(static_cast<size_t>(8 * 4));
  const ExpertCall local{1, D, experts, counts, x.data(), cpu.data()};
  EXPECT_FALSE(RunExpertCallLocally((*model)->layers()[1], local, mid.data()).ok());  // without LoRA scratch
  ASSERT_TRUE(RunExpertCallLocally((*model)->layers()[1], local, mid.data(), lora.data()).ok());
  float scale = 0;
  for (float v : cpu) scale = std::max(scale, std::fabs(v));
  for (size_t i = 0; i < cpu.size(); ++i) ASSERT_NEAR(gpu[i], cpu[i], 1e-5f * (1 + scale)) << "element " << i;
}

}  // namespace
}  // namespace brickrt
