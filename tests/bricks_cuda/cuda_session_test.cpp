// The whole model on one GPU (CudaModel + CudaSession) against the CPU Session: prefill of a ragged
// batch, batched decode, KV-cached decode against recomputation, greedy generation, F32 and BF16
// weights, a pruned model, the validation errors (nothing advances) and what is refused. Built against
// the host emulation of the CUDA kernels (runs everywhere) and against the real kernels (skips without
// a GPU).
//
// Tolerances. F32 weights: the GPU's F32 GEMMs (no TF32) differ from the CPU's only in summation order,
// ~K·2⁻²⁴ of Σ|x·w| per product (≈ 1e-6 here), amplified a little by 3 layers of LayerNorm and
// attention: 1e-4·(1 + |logit|) leaves two orders of magnitude. The routing is compared through the
// logits: a flipped expert moves a logit by O(0.1), so each F32 test first checks on the CPU that every
// router decision of its prompts has a top-k margin (p_k − p_{k+1}) of at least 1e-4 — far above the
// ~1e-7 the arithmetic can move a probability — so ids cannot flip and the tight tolerance holds.
// BF16 weights: the GPU rounds every GEMM input x to BF16 (matmul.h; the CPU widens W instead), a
// relative 2⁻⁹ per element, on each of the ~4 GEMMs of a path per layer, so logits move by ~1e-2
// (measured in the emulation, which rounds exactly as the GPU) and are compared to 5e-2·(1 + |logit|).
// The rounding also moves router probabilities, enough to flip a near-tie. Two BF16 models: one routes
// every row to all experts of a layer (k = E: the same pairs whatever the rounding), so only the
// arithmetic is compared; the pruned one routes top-2, and its test tokens' smallest CPU margin is
// 3.7e-4: the emulation picks the CPU's experts there, and a GPU differs from the emulation only by
// summation order (~1e-7 of a probability), so its ids are the CPU's too. Its margin floor of 3e-4
// keeps new test tokens from bringing a near-tie in unnoticed.
#include "bricks/cuda/cuda_session.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "bricks/blocks.h"
#include "bricks/cuda/cuda_model.h"
#include "bricks/session.h"
#include "registry/test_model.h"
#include "tests/bricks_cuda/routing_margin.h"
#include "tests/kernels_cuda/cuda_test_util.h"

namespace brickrt {
namespace {

using testing::MinRoutingMargin;

struct Case {
  const char* name;
  TestModelOptions opts;
  float tol;         // |gpu − cpu| <= tol·(1 + |cpu|)
  float min_margin;  // > 0: every CPU router decision on the test tokens needs this top-k margin
  // LoRA plugins attached on the fly (MakeRandomLoras targets, in the model's dtype); nullptr: none.
  const char* loras = nullptr;
  // CudaSession::Create's: small blocks through ExpertGemvCuda (the default), or 0: all through cuBLAS.
  int64_t gemv_max_pairs = CudaSession::kGemvMaxPairs;
};

// Every projection a LoRA can target: both attention ones, both MLP ones, the lm head.
constexpr const char* kAllLoraTargets = "L*.attn.E*.wq,L*.attn.E*.wo,L*.mlp.E*.w1,L*.mlp.E*.w2,lm_head.weight";

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

// A pruned model: expert counts differ per layer, top-2 of 3..8.
TestModelOptions Pruned(DType dt) {
  return {.layers = 3, .d_model = 64, .ffd_hidden = 96, .gating_size = 32, .vocab = 257,
          .attn_experts_per_layer = {4, 3, 6}, .mlp_experts_per_layer = {8, 5, 7}, .k_att = 2, .k_mlp = 2,
          .dtype = dt, .seed = 7};
}

// Every row goes to every expert (k = E), so rounding cannot change which experts run.
TestModelOptions AllExperts(DType dt) {
  TestModelOptions o = Pruned(dt);
  o.attn_experts_per_layer.clear();
  o.mlp_experts_per_layer.clear();
  o.attn_experts = 2;
  o.mlp_experts = 3;
  o.k_att = 2;
  o.k_mlp = 3;
  return o;
}

std::vector<Case> Cases() {
  return {{"F32Pruned", Pruned(DType::kF32), 1e-4f, 1e-4f},
          {"BF16AllExperts", AllExperts(DType::kBF16), 5e-2f, 0.0f},
          {"BF16Pruned", Pruned(DType::kBF16), 5e-2f, 3e-4f},
          {"F32PrunedLoras", Pruned(DType::kF32), 1e-4f, 1e-4f, kAllLoraTargets},
          {"BF16AllExpertsLoras", AllExperts(DType::kBF16), 5e-2f, 0.0f, kAllLoraTargets}};
}

// The model with random loras on `lora_targets` (nullptr: none) in its own dtype, rank 4.
std::shared_ptr<const Model> BuildModel(const TestModelOptions& o, const char* lora_targets = nullptr) {
  auto made = MakeRandomModel(o);
  EXPECT_TRUE(made.ok()) << made.status().ToString();
  if (!made.ok()) return nullptr;
  std::vector<LoraAttachment> loras;
  if (lora_targets != nullptr) {
    auto bricks = MakeRandomLoras(made->first, {.targets = lora_targets, .rank = 4, .dtype = o.dtype, .seed = 5});
    EXPECT_TRUE(bricks.ok()) << bricks.status().ToString();
    if (!bricks.ok()) return nullptr;
    for (BrickData& b : *bricks) loras.push_back({std::move(b), 0.5});
  }
  auto model = Model::Build(made->first, std::move(made->second), std::move(loras));
  EXPECT_TRUE(model.ok()) << model.status().ToString();
  return model.ok() ? *model : nullptr;
}

int32_t Argmax(const float* x, int64_t n) { return static_cast<int32_t>(std::max_element(x, x + n) - x); }

// Both sessions on one model, the same options.
struct Pair {
  std::unique_ptr<Session> cpu;
  std::unique_ptr<CudaSession> gpu;
};

class CudaSessionTest : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    BRICK_REQUIRE_CUDA_DEVICE();
    model_ = BuildModel(GetParam().opts, GetParam().loras);
    ASSERT_NE(model_, nullptr);
    auto up = CudaModel::Upload(model_, 0);
    ASSERT_TRUE(up.ok()) << up.status().ToString();
    gpu_model_ = *up;
    V_ = model_->config().vocab_size;
  }

  Pair Sessions(const SessionOptions& o) {
    Pair p;
    p.cpu = std::make_unique<Session>(model_, o, nullptr);
    auto g = CudaSession::Create(gpu_model_, o, GetParam().gemv_max_pairs);
    EXPECT_TRUE(g.ok()) << g.status().ToString();
    if (g.ok()) p.gpu = std::move(g).value();
    return p;
  }

  // Checks the routing premise of the tolerance (see the file comment) on every sequence of a test.
  void CheckMargins(const std::vector<std::vector<int32_t>>& seqs) {
    if (GetParam().min_margin <= 0) return;
    for (const auto& s : seqs) {
      const float margin = MinRoutingMargin(*model_, s);
      ASSERT_GE(margin, GetParam().min_margin)
          << "a router near-tie on these test tokens: pick others (the comparison would test "
             "tie-breaking under rounding, not the GPU path)";
    }
  }

  void ExpectClose(const std::vector<float>& gpu, const std::vector<float>& cpu, size_t n, const std::string& what) {
    const float tol = GetParam().tol;
    float worst = 0.0f;
    for (size_t i = 0; i < n; ++i) {
      ASSERT_FALSE(std::isnan(gpu[i])) << what << ": element " << i;
      const float err = std::fabs(gpu[i] - cpu[i]) / (1.0f + std::fabs(cpu[i]));
      worst = std::max(worst, err);
      ASSERT_LE(err, tol) << what << ": element " << i << " (row " << i / static_cast<size_t>(V_) << ") gpu " << gpu[i]
                          << " cpu " << cpu[i];
    }
    RecordProperty(what, std::to_string(worst));
  }

  std::shared_ptr<const Model> model_;
  std::shared_ptr<const CudaModel> gpu_model_;
  int64_t V_ = 0;
};

TEST_P(CudaSessionTest, PrefillOfARaggedBatchMatchesTheCpu) {
  const std::vector<std::vector<int32_t>> seqs = {{5, 17, 99, 3, 250}, {42}, {1, 2, 3, 4, 5, 6, 7, 8, 200}};
  CheckMargins(seqs);
  for (bool all_positions : {true, false}) {
    Pair p = Sessions(SessionOptions{3, 32, 32});
    ASSERT_NE(p.gpu, nullptr);
    std::vector<SequenceChunk> chunks;
    for (const auto& s : seqs) {
      const int a = *p.cpu->AddSequence(), b = *p.gpu->AddSequence();
      ASSERT_EQ(a, b);
      chunks.push_back({a, s});
    }
    const size_t rows = all_positions ? 15 : 3;
    std::vector<float> cpu(rows * V_), gpu(rows * V_, NAN);
    ASSERT_TRUE(p.cpu->Forward(chunks, all_positions, cpu.data()).ok());
    const Status st = p.gpu->Forward(chunks, all_positions, gpu.data());
    ASSERT_TRUE(st.ok()) << st.ToString();
    ExpectClose(gpu, cpu, cpu.size(), all_positions ? "prefill_all_positions" : "prefill_last_positions");
    for (size_t i = 0; i < seqs.size(); ++i)
      EXPECT_EQ(p.gpu->Length(chunks[i].seq), static_cast<int64_t>(seqs[i].size()));
  }
}

TEST_P(CudaSessionTest, BatchedDecodeStepsMatchTheCpu) {
  // The third sequence joins at step 2 with its prompt, so steps mix prefill and decode.
  std::vector<std::vector<int32_t>> seqs = {{5, 17, 99}, {1, 2, 3, 4, 5, 6, 7}, {200, 7}};
  Pair p = Sessions(SessionOptions{3, 32, 16});
  ASSERT_NE(p.gpu, nullptr);
  std::vector<int> ids;
  for (size_t i = 0; i < seqs.size(); ++i) {
    ids.push_back(*p.cpu->AddSequence());
    ASSERT_EQ(*p.gpu->AddSequence(), ids.back());
  }
  std::vector<size_t> fed(3, 0);  // tokens of each sequence already in the caches
  std::vector<float> cpu(3 * V_), gpu(3 * V_);
  for (int step = 0; step < 6; ++step) {
    std::vector<SequenceChunk> chunks;
    std::vector<size_t> which;
    for (size_t i = 0; i < 3; ++i) {
      if (i == 2 && step < 2) continue;
      chunks.push_back({ids[i], std::span<const int32_t>(seqs[i]).subspan(fed[i])});
      which.push_back(i);
    }
    ASSERT_TRUE(p.cpu->Forward(chunks, false, cpu.data()).ok());
    const Status st = p.gpu->Forward(chunks, false, gpu.data());
    ASSERT_TRUE(st.ok()) << st.ToString();
    ExpectClose(gpu, cpu, chunks.size() * V_, "decode_step_" + std::to_string(step));
    // Both continue with the CPU's choice, so a later step compares the same inputs.
    for (size_t c = 0; c < which.size(); ++c) {
      fed[which[c]] = seqs[which[c]].size();
      seqs[which[c]].push_back(Argmax(&cpu[c * V_], V_));
    }
  }
  CheckMargins(seqs);
}

TEST_P(CudaSessionTest, CachedDecodeEqualsRecomputationOnTheGpu) {
  Pair p = Sessions(SessionOptions{2, 32, 32});
  ASSERT_NE(p.gpu, nullptr);
  CudaSession& gpu = *p.gpu;
  std::vector<int32_t> tokens = {9, 100, 33, 4};
  const int seq = *gpu.AddSequence();
  std::vector<float> logits(32 * V_);
  std::vector<std::vector<float>> cached;  // logits of each decoded position
  ASSERT_TRUE(gpu.Forward(std::vector<SequenceChunk>{{seq, tokens}}, false, logits.data()).ok());
  for (int i = 0; i < 8; ++i) {
    cached.emplace_back(logits.begin(), logits.begin() + V_);
    tokens.push_back(Argmax(logits.data(), V_));
    const std::vector<SequenceChunk> c = {{seq, std::span<const int32_t>(tokens).last(1)}};
    ASSERT_TRUE(gpu.Forward(c, false, logits.data()).ok());
  }
  cached.emplace_back(logits.begin(), logits.begin() + V_);
  // The whole sequence again, on a fresh sequence of the same session (a reused-later slot).
  gpu.RemoveSequence(seq);
  const int fresh = *gpu.AddSequence();
  EXPECT_EQ(fresh, seq);
  std::vector<float> all(tokens.size() * V_);
  ASSERT_TRUE(gpu.Forward(std::vector<SequenceChunk>{{fresh, tokens}}, true, all.data()).ok());
  // Same kernels on the same rows; only GEMM shapes (and so cuBLAS's summation order) differ.
  for (size_t i = 0; i < cached.size(); ++i) {
    const size_t row = 3 + i;  // the prompt's last position, then each decoded one
    std::vector<float> recomputed(all.begin() + row * V_, all.begin() + (row + 1) * V_);
    ExpectClose(recomputed, cached[i], static_cast<size_t>(V_), "recompute_row_" + std::to_string(row));
  }
  CheckMargins({tokens});
}

TEST_P(CudaSessionTest, GreedyGenerationOfEightTokensIsTheSame) {
  Pair p = Sessions(SessionOptions{1, 32, 32});
  ASSERT_NE(p.gpu, nullptr);
  std::vector<int32_t> cpu_tokens = {17, 4, 250, 31}, gpu_tokens = cpu_tokens;
  const int a = *p.cpu->AddSequence(), b = *p.gpu->AddSequence();
  std::vector<float> cpu(V_), gpu(V_);
  size_t fed = 0;
  for (int i = 0; i < 8; ++i) {
    const std::vector<SequenceChunk> cc = {{a, std::span<const int32_t>(cpu_tokens).subspan(fed)}};
    const std::vector<SequenceChunk> gc = {{b, std::span<const int32_t>(gpu_tokens).subspan(fed)}};
    ASSERT_TRUE(p.cpu->Forward(cc, false, cpu.data()).ok());
    ASSERT_TRUE(p.gpu->Forward(gc, false, gpu.data()).ok());
    fed = cpu_tokens.size();
    cpu_tokens.push_back(Argmax(cpu.data(), V_));
    gpu_tokens.push_back(Argmax(gpu.data(), V_));
  }
  EXPECT_EQ(gpu_tokens, cpu_tokens);
  CheckMargins({cpu_tokens});
}

TEST_P(CudaSessionTest, BadStepsAreRefusedAndNothingAdvances) {
  Pair p = Sessions(SessionOptions{2, 8, 8});
  ASSERT_NE(p.gpu, nullptr);
  CudaSession& gpu = *p.gpu;
  const int a = *gpu.AddSequence(), b = *gpu.AddSequence();
  ASSERT_EQ(*p.cpu->AddSequence(), a);
  ASSERT_EQ(*p.cpu->AddSequence(), b);
  const std::vector<int32_t> ok = {3, 4, 5}, bad_id = {3, static_cast<int32_t>(V_)}, seven = {1, 2, 3, 4, 5, 6, 7};
  std::vector<float> logits(8 * V_);
  auto expect = [&](std::vector<SequenceChunk> chunks, StatusCode code, const char* what) {
    const Status st = gpu.Forward(chunks, false, logits.data());
    EXPECT_EQ(st.code(), code) << what << ": " << st.ToString();
    EXPECT_EQ(st.ToString(), p.cpu->Forward(chunks, false, logits.data()).ToString()) << "the CPU Session's error";
    EXPECT_EQ(gpu.Length(a), 0) << what;
    EXPECT_EQ(gpu.Length(b), 0) << what;
  };
  expect({{a, ok}, {b, bad_id}}, StatusCode::kInvalidArgument, "token id outside the vocabulary");
  expect({{a, ok}, {7, ok}}, StatusCode::kInvalidArgument, "unknown sequence");
  expect({{a, ok}, {a, ok}}, StatusCode::kInvalidArgument, "a sequence twice");
  expect({{a, ok}, {b, std::span<const int32_t>()}}, StatusCode::kInvalidArgument, "empty chunk");
  expect({{a, ok}, {b, seven}}, StatusCode::kOutOfRange, "more than max_step_tokens");
  // Context full: 7 tokens fit, 2 more do not.
  ASSERT_TRUE(gpu.Forward(std::vector<SequenceChunk>{{a, seven}}, false, logits.data()).ok());
  ASSERT_TRUE(p.cpu->Forward(std::vector<SequenceChunk>{{a, seven}}, false, logits.data()).ok());
  const Status full =
      gpu.Forward(std::vector<SequenceChunk>{{a, std::span<const int32_t>(ok).first(2)}}, false, logits.data());
  EXPECT_EQ(full.code(), StatusCode::kOutOfRange) << full.ToString();
  EXPECT_EQ(gpu.Length(a), 7);
  // The refused steps changed nothing: the next step equals the CPU's, which saw only valid steps.
  std::vector<float> cpu(2 * V_), out(2 * V_);
  const std::vector<SequenceChunk> next = {{a, std::span<const int32_t>(ok).first(1)}, {b, ok}};
  ASSERT_TRUE(p.cpu->Forward(next, false, cpu.data()).ok());
  ASSERT_TRUE(gpu.Forward(next, false, out.data()).ok());
  ExpectClose(out, cpu, cpu.size(), "after_errors");
  EXPECT_EQ(gpu.Length(a), 8);
  EXPECT_EQ(gpu.Length(b), 3);
}

INSTANTIATE_TEST_SUITE_P(Weights, CudaSessionTest, ::testing::ValuesIn(Cases()),
                         [](const ::testing::TestParamInfo<Case>& i) { return std::string(i.param.name); });
// The same with every block through cuBLAS (the prefill path), so both expert paths are compared.
std::vector<Case> CasesThroughCublas() {
  std::vector<Case> cases = Cases();
  for (Case& c : cases) c.gemv_max_pairs = 0;
  return cases;
}
INSTANTIATE_TEST_SUITE_P(WeightsCublas, CudaSessionTest, ::testing::ValuesIn(CasesThroughCublas()),
                         [](const ::testing::TestParamInfo<Case>& i) { return std::string(i.param.name); });

TEST(CudaSessionCreate, OptionsAreCheckedAsSessionDoesAndSlotsAreReused) {
  BRICK_REQUIRE_CUDA_DEVICE();
  auto model = BuildModel(Pruned(DType::kBF16));
  ASSERT_NE(model, nullptr);
  auto gpu = CudaModel::Upload(model, 0);
  ASSERT_TRUE(gpu.ok()) << gpu.status().ToString();
  EXPECT_EQ((*gpu)->device_bytes(), CudaModel::PlannedBytes(*model));
  EXPECT_GE((*gpu)->device_bytes(), model->TotalWeightBytes());
  // The device pointer tables hold the same expert addresses as the host lists.
  for (const CudaLayer& l : (*gpu)->layers()) {
    for (auto [table, list] : {std::pair{l.wq_table, &l.wq}, std::pair{l.wo_table, &l.wo},
                               std::pair{l.w1_table, &l.w1}, std::pair{l.w2_table, &l.w2}}) {
      std::vector<const void*> got(list->size());
      ASSERT_TRUE(cuda::CopyToHost(got.data(), table, got.size() * sizeof(void*), nullptr).ok());
      EXPECT_EQ(got, *list);
    }
  }
  EXPECT_EQ(CudaSession::Create(*gpu, SessionOptions{0, 8, 8}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(CudaSession::Create(*gpu, SessionOptions{1, 0, 8}).status().code(), StatusCode::kInvalidArgument);
  // A GEMV threshold above the one the split-K scratch is sized for would overrun it on a GPU.
  EXPECT_EQ(CudaSession::Create(*gpu, SessionOptions{1, 8, 8}, CudaSession::kGemvMaxPairs + 1).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_TRUE(CudaSession::Create(*gpu, SessionOptions{1, 8, 8}, CudaSession::kGemvMaxPairs).ok());
  // An MLP placement is checked against the model (cuda_split_test.cpp runs one).
  MlpPlacement placement;
  placement.owner = {{MlpPlacement::kLocal}};  // one owner for a layer that keeps 8 experts
  SessionOptions with_placement{1, 8, 8};
  with_placement.mlp_placement = &placement;
  EXPECT_EQ(CudaSession::Create(*gpu, with_placement).status().code(), StatusCode::kInvalidArgument);
  // More KV cache than any device holds: refused up front, naming the size.
  const auto huge = CudaSession::Create(*gpu, SessionOptions{1 << 16, 1 << 24, 8});
  EXPECT_EQ(huge.status().code(), StatusCode::kOutOfRange) << huge.status().ToString();

  auto s = CudaSession::Create(*gpu, SessionOptions{2, 8, 8});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  CudaSession& session = **s;
  const int a = *session.AddSequence(), b = *session.AddSequence();
  EXPECT_EQ(session.AddSequence().status().code(), StatusCode::kOutOfRange);
  const int64_t bytes = session.CacheBytes();
  EXPECT_EQ(bytes, 2 * 3 * 8 * 64 * 4);  // two slots of [n_layer, max_context, D] F32
  session.RemoveSequence(a);
  EXPECT_EQ(session.Length(a), -1);
  EXPECT_EQ(session.LiveSequences(), 1);
  EXPECT_EQ(*session.AddSequence(), a);  // the freed slot and its cache again
  EXPECT_EQ(session.CacheBytes(), bytes);
  EXPECT_EQ(session.Length(b), 0);
}

TEST(CudaModelUpload, AMissingDeviceIsAnErrorWithContext) {
  BRICK_REQUIRE_CUDA_DEVICE();
  auto model = BuildModel(Pruned(DType::kF32));
  ASSERT_NE(model, nullptr);
  const int missing = static_cast<int>(cuda::ListDevices().size()) + 3;
  const auto up = CudaModel::Upload(model, missing);
  EXPECT_FALSE(up.ok());
  EXPECT_NE(up.status().ToString().find("uploading the model to GPU " + std::to_string(missing)), std::string::npos)
      << up.status().ToString();
}

}  // namespace
}  // namespace brickrt
