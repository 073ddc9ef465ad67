// A model with LoRA plugins against golden logits from the independent NumPy reference
// (tests/reference/moduleformer_ref.py applies them on the fly in float64; regenerate with
//   /usr/bin/python3 tests/reference/make_golden.py --out tests/reference/data).
// data/lora/ holds lora.json ({"base": case, "loras": [{"target", "scale"}]}) and lora.safetensors
// ("<target>.a" [r, in], "<target>.b" [out, r], "<target>.alpha" [1]); the base checkpoint is data/<base>.
#include <gtest/gtest.h>

#include <cmath>

#include "bricks/generator.h"
#include "bricks/session.h"
#include "core/npy.h"
#include "registry/safetensors.h"
#include "golden_checks.h"
#include "test_util.h"

namespace brickrt {
namespace {

using testing::ExpectGreedyDecodeMatches;
using testing::ExpectPromptLogitsMatch;
using testing::IdsFromJson;
using testing::ReadFile;
using testing::ReferenceDir;

// As golden_test.cpp: F32 weights, F32 accumulation against float64; observed ~1e-5.
constexpr float kLogitTolerance = 1e-3f;

struct LoraCase {
  ModelConfig cfg;
  std::vector<BrickData> bricks;
  std::vector<LoraAttachment> loras;
  std::vector<std::vector<int32_t>> prompts;
};

Result<LoraCase> LoadLoraCase(const std::string& dir) {
  LoraCase c;
  BRICK_ASSIGN_OR_RETURN(JsonValue spec, ParseJson(ReadFile(dir + "/lora.json")));
  BRICK_ASSIGN_OR_RETURN(auto ckpt, LoadHfCheckpoint(ReferenceDir(spec.Find("base")->as_string())));
  c.cfg = ckpt.config;
  c.bricks = std::move(ckpt.bricks);
  BRICK_ASSIGN_OR_RETURN(SafetensorsFile file, SafetensorsFile::Open(dir + "/lora.safetensors"));
  for (const JsonValue& entry : spec.Find("loras")->as_array()) {
    LoraAttachment a;
    a.brick.kind = BrickKind::kLora;
    a.brick.target = entry.Find("target")->as_string();
    BRICK_ASSIGN_OR_RETURN(const LoraTarget t, ParseLoraTarget(a.brick.target));
    a.brick.layer = t.layer;
    a.brick.index = t.index;
    for (const char* name : {"a", "b", "alpha"}) {
      BRICK_ASSIGN_OR_RETURN(Tensor tensor, file.Read(a.brick.target + "." + name));
      a.brick.tensors.emplace_back(name, std::move(tensor));
    }
    a.scale = entry.Find("scale")->as_double();
    c.loras.push_back(std::move(a));
  }
  BRICK_ASSIGN_OR_RETURN(JsonValue prompts, ParseJson(ReadFile(dir + "/prompts.json")));
  for (const JsonValue& p : prompts.Find("prompts")->as_array()) c.prompts.push_back(IdsFromJson(p));
  return c;
}

// The bricks with every lora merged into its target brick.
Result<std::vector<BrickData>> MergeAll(std::vector<BrickData> bricks, const std::vector<LoraAttachment>& loras,
                                        const ModelConfig& cfg) {
  for (const LoraAttachment& l : loras) {
    BRICK_RETURN_IF_ERROR(CheckMergeable(l.brick, cfg));
    const std::string name = l.brick.target.substr(0, l.brick.target.rfind('.'));
    auto it = std::find_if(bricks.begin(), bricks.end(), [&](const BrickData& b) { return b.Name() == name; });
    if (it == bricks.end()) return NotFound("no brick " + name);
    BRICK_ASSIGN_OR_RETURN(*it, MergeLora(*it, l.brick, l.scale));
  }
  return bricks;
}

class LoraGoldenTest : public ::testing::TestWithParam<bool> {  // merged?
 protected:
  void SetUp() override {
    dir_ = ReferenceDir("lora");
    auto c = LoadLoraCase(dir_);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    ASSERT_EQ(c->loras.size(), 6u);
    prompts_ = c->prompts;
    Result<std::shared_ptr<const Model>> model = InvalidArgument("unset");
    if (GetParam()) {
      auto merged = MergeAll(c->bricks, c->loras, c->cfg);
      ASSERT_TRUE(merged.ok()) << merged.status().ToString();
      model = Model::Build(c->cfg, std::move(*merged));
    } else {
      model = Model::Build(c->cfg, std::move(c->bricks), std::move(c->loras));
    }
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    model_ = *model;
  }

  std::string dir_;
  std::shared_ptr<const Model> model_;
  std::vector<std::vector<int32_t>> prompts_;
};

TEST_P(LoraGoldenTest, PromptLogitsMatchReference) {
  ExpectPromptLogitsMatch(model_, dir_, prompts_, kLogitTolerance);
}

TEST_P(LoraGoldenTest, CachedGreedyDecodeMatchesReference) { ExpectGreedyDecodeMatches(model_, dir_, prompts_); }

INSTANTIATE_TEST_SUITE_P(Reference, LoraGoldenTest, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "Merged" : "OnTheFly"; });

}  // namespace
}  // namespace brickrt
