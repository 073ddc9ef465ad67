// The whole forward pass against golden logits from the independent NumPy reference
// (tests/reference/moduleformer_ref.py; regenerate with
//   /usr/bin/python3 tests/reference/make_golden.py --out tests/reference/data).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "bricks/generator.h"
#include "bricks/session.h"
#include "core/npy.h"
#include "golden_checks.h"
#include "test_util.h"

namespace brickrt {
namespace {

using testing::ExpectGreedyDecodeMatches;
using testing::ExpectPromptLogitsMatch;
using testing::IdsFromJson;
using testing::MaxAbsDiff;
using testing::ReadFile;
using testing::ReferenceDir;

// F32 accumulation against the float64 reference over D = 64..96-long dot products: observed
// errors are ~1e-5; 1e-3 is the bound and leaves room for summation order.
constexpr float kLogitTolerance = 1e-3f;

std::vector<std::vector<int64_t>> PerLayerIds(const JsonValue& arr) {
  std::vector<std::vector<int64_t>> out;
  for (const JsonValue& layer : arr.as_array()) {
    std::vector<int64_t>& ids = out.emplace_back();
    for (const JsonValue& id : layer.as_array()) ids.push_back(*id.as_int64());
  }
  return out;
}

// A submodel case (submodel.json: base case, removed experts per layer, top-k) runs the base case's
// checkpoint with the removal in its config and without the removed experts' bricks; the reference
// computed it by deleting those experts from the checkpoint.
void ApplySubmodel(const std::string& dir, LoadedCheckpoint* ckpt) {
  auto sub = ParseJson(ReadFile(dir + "/submodel.json"));
  ASSERT_TRUE(sub.ok()) << sub.status().ToString();
  ModelConfig& cfg = ckpt->config;
  cfg.att_removed = PerLayerIds(*sub->Find("att_removed"));
  cfg.mlp_removed = PerLayerIds(*sub->Find("mlp_removed"));
  cfg.k_att = static_cast<int>(*sub->Find("k_att")->as_int64());
  cfg.k_mlp = static_cast<int>(*sub->Find("k_mlp")->as_int64());
  std::vector<BrickData> kept;
  for (BrickData& b : ckpt->bricks) {
    const bool att = b.kind == BrickKind::kAttnExpert;
    if ((att || b.kind == BrickKind::kMlpExpert) && cfg.IsRemoved(att, b.layer, b.index)) continue;
    kept.push_back(std::move(b));
  }
  ckpt->bricks = std::move(kept);
}

class GoldenTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    dir_ = ReferenceDir(GetParam());
    const bool submodel = std::filesystem::exists(dir_ + "/submodel.json");
    std::string base = dir_;
    if (submodel) {
      auto sub = ParseJson(ReadFile(dir_ + "/submodel.json"));
      ASSERT_TRUE(sub.ok()) << sub.status().ToString();
      base = ReferenceDir(sub->Find("base")->as_string());
    }
    auto ckpt = LoadHfCheckpoint(base);
    ASSERT_TRUE(ckpt.ok()) << ckpt.status().ToString();
    if (submodel) {
      ASSERT_NO_FATAL_FAILURE(ApplySubmodel(dir_, &*ckpt));
    }
    auto model = Model::Build(ckpt->config, std::move(ckpt->bricks));
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    model_ = *model;
    auto prompts = ParseJson(ReadFile(dir_ + "/prompts.json"));
    ASSERT_TRUE(prompts.ok()) << prompts.status().ToString();
    for (const JsonValue& p : prompts->Find("prompts")->as_array()) prompts_.push_back(IdsFromJson(p));
    ASSERT_EQ(prompts_.size(), 3u);
  }

  std::string dir_;
  std::shared_ptr<const Model> model_;
  std::vector<std::vector<int32_t>> prompts_;
};

TEST_P(GoldenTest, PromptLogitsMatchReferenceOneSequenceAtATime) {
  ExpectPromptLogitsMatch(model_, dir_, prompts_, kLogitTolerance);
}

TEST_P(GoldenTest, BatchOfDifferentLengthsMatchesReference) {
  ThreadPool pool(2);
  const int64_t V = model_->config().vocab_size;
  Session session(model_, SessionOptions{3, 64, 64}, &pool);
  std::vector<SequenceChunk> chunks;
  int64_t total = 0;
  for (const auto& p : prompts_) {
    auto seq = session.AddSequence();
    ASSERT_TRUE(seq.ok());
    chunks.push_back({*seq, p});
    total += static_cast<int64_t>(p.size());
  }
  std::vector<float> logits(static_cast<size_t>(total * V));
  ASSERT_TRUE(session.Forward(chunks, true, logits.data()).ok());
  int64_t row = 0;
  for (size_t k = 0; k < prompts_.size(); ++k) {
    auto golden = ReadNpyF32(dir_ + "/logits_" + std::to_string(k) + ".npy");
    ASSERT_TRUE(golden.ok());
    std::vector<float> mine(logits.begin() + row * V,
                            logits.begin() + (row + static_cast<int64_t>(prompts_[k].size())) * V);
    EXPECT_LE(MaxAbsDiff(mine, golden->second), kLogitTolerance) << "prompt " << k;
    row += static_cast<int64_t>(prompts_[k].size());
  }
}

TEST_P(GoldenTest, CachedGreedyDecodeMatchesReferenceRecomputation) {
  ExpectGreedyDecodeMatches(model_, dir_, prompts_);  // all three prompts as one batch
}

// "pruned": the ragged case with experts removed and top-k changed (a submodel, issue #4).
INSTANTIATE_TEST_SUITE_P(Reference, GoldenTest, ::testing::Values("bf16", "f32", "ragged", "pruned"));

}  // namespace
}  // namespace brickrt
