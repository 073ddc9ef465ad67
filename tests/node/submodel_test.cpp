// Submodels end to end at the library level: a spec composed against a registry, loaded (only the
// kept bricks), saved as a manifest and loaded again; removal semantics against a physically pruned
// model; plugins on the fly vs merged; and every validation error leaves the registry as it was.
#include "node/submodel.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>

#include "bricks/session.h"
#include "core/rng.h"
#include "core/submodel_spec.h"
#include "registry/hf_checkpoint.h"
#include "registry/test_model.h"

namespace brickrt {
namespace {

// 3 layers, attention experts {4, 3, 5}, MLP experts {6, 4, 5}, top-2 both; F32 so that merged and
// on-the-fly LoRA agree to rounding.
std::pair<ModelConfig, std::vector<BrickData>> Base(DType dtype = DType::kF32) {
  TestModelOptions o;
  o.layers = 3;
  o.d_model = 32;
  o.ffd_hidden = 48;
  o.gating_size = 16;
  o.vocab = 50;
  o.attn_experts_per_layer = {4, 3, 5};
  o.mlp_experts_per_layer = {6, 4, 5};
  o.dtype = dtype;
  o.seed = 11;
  auto m = MakeRandomModel(o);
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  return std::move(m).value();
}

std::vector<float> Logits(const Model& model, const std::vector<int32_t>& prompt) {
  const auto T = static_cast<int64_t>(prompt.size());
  Session session(std::shared_ptr<const Model>(&model, [](const Model*) {}), SessionOptions{1, T, T}, nullptr);
  auto seq = session.AddSequence();
  EXPECT_TRUE(seq.ok());
  std::vector<float> logits(static_cast<size_t>(T * model.config().vocab_size));
  const SequenceChunk chunk{*seq, prompt};
  EXPECT_TRUE(session.Forward({&chunk, 1}, true, logits.data()).ok());
  return logits;
}

float MaxAbsDiff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  float m = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

const std::vector<int32_t> kPrompt = {3, 17, 42, 8, 8, 25, 1, 49, 30};

// What deleting experts from a checkpoint gives (the issue's definition of removal): the router's
// w2 loses those rows, the surviving experts are renumbered 0.., the config's counts shrink.
std::pair<ModelConfig, std::vector<BrickData>> PhysicallyPruned(const ModelConfig& cfg,
                                                                const std::vector<BrickData>& bricks,
                                                                const std::vector<std::vector<int64_t>>& att_removed,
                                                                const std::vector<std::vector<int64_t>>& mlp_removed) {
  ModelConfig out = cfg;
  std::vector<BrickData> kept;
  auto removed = [&](bool att, int layer, int e) {
    const auto& r = (att ? att_removed : mlp_removed)[static_cast<size_t>(layer)];
    return std::find(r.begin(), r.end(), e) != r.end();
  };
  for (size_t l = 0; l < static_cast<size_t>(cfg.n_layer); ++l) {
    out.n_att_experts[l] -= static_cast<int64_t>(att_removed[l].size());
    out.n_mlp_experts[l] -= static_cast<int64_t>(mlp_removed[l].size());
  }
  for (const BrickData& b : bricks) {
    const bool att = b.kind == BrickKind::kAttnExpert || b.kind == BrickKind::kAttnRouter;
    if (b.kind == BrickKind::kAttnExpert || b.kind == BrickKind::kMlpExpert) {
      if (removed(att, b.layer, b.index)) continue;
      BrickData c = b;
      int shift = 0;
      for (int e = 0; e < b.index; ++e) shift += removed(att, b.layer, e) ? 1 : 0;
      c.index -= shift;
      kept.push_back(std::move(c));
    } else if (b.kind == BrickKind::kAttnRouter || b.kind == BrickKind::kMlpRouter) {
      BrickData c;
      c.kind = b.kind;
      c.layer = b.layer;
      for (const auto& [name, t] : b.tensors) {
        if (name != "w2") {
          c.tensors.emplace_back(name, t);
          continue;
        }
        const int64_t E = t.dim(0), G = t.dim(1);
        std::vector<int64_t> rows;
        for (int64_t e = 0; e < E; ++e)
          if (!removed(att, b.layer, static_cast<int>(e))) rows.push_back(e);
        Tensor w2(t.dtype(), {static_cast<int64_t>(rows.size()), G});
        const size_t row_bytes = static_cast<size_t>(G) * DTypeSize(t.dtype());
        for (size_t i = 0; i < rows.size(); ++i) {
          std::memcpy(static_cast<uint8_t*>(w2.mutable_data()) + i * row_bytes,
                      static_cast<const uint8_t*>(t.data()) + static_cast<size_t>(rows[i]) * row_bytes, row_bytes);
        }
        c.tensors.emplace_back(name, std::move(w2));
      }
      kept.push_back(std::move(c));
    } else {
      kept.push_back(b);
    }
  }
  return {out, kept};
}

// Random lora bricks on the given targets, shaped for Base().
std::vector<BrickData> RandomLoras(const std::vector<std::string>& targets, int rank, uint64_t seed,
                                   int64_t d_model = 32, int64_t ffd = 48, int64_t vocab = 50) {
  std::vector<BrickData> out;
  Rng rng(seed);
  for (const std::string& target : targets) {
    BrickData b;
    b.kind = BrickKind::kLora;
    b.target = target;
    const std::string tensor = target.substr(target.rfind('.') + 1);
    int64_t in = d_model, outf = d_model;
    if (tensor == "w1") outf = ffd;
    if (tensor == "w2") in = ffd;
    if (tensor == "weight") outf = vocab;
    if (target.rfind("lm_head", 0) != 0) {
      b.layer = std::stoi(target.substr(1, target.find('.') - 1));
      b.index = std::stoi(target.substr(target.find(".E") + 2));
    }
    Tensor a(DType::kF32, {rank, in}), bb(DType::kF32, {outf, rank}), alpha(DType::kF32, {1});
    for (int64_t i = 0; i < a.numel(); ++i) a.mutable_data_as<float>()[i] = static_cast<float>(rng.Normal() * 0.2);
    for (int64_t i = 0; i < bb.numel(); ++i) bb.mutable_data_as<float>()[i] = static_cast<float>(rng.Normal() * 0.2);
    alpha.mutable_data_as<float>()[0] = 2.0f * static_cast<float>(rank);
    b.tensors = {{"a", std::move(a)}, {"b", std::move(bb)}, {"alpha", std::move(alpha)}};
    out.push_back(std::move(b));
  }
  return out;
}

class SubmodelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto reg = Registry::Open(":memory:");
    ASSERT_TRUE(reg.ok()) << reg.status().ToString();
    reg_ = std::move(reg).value();
    std::tie(cfg_, bricks_) = Base();
    auto imported = reg_->Import("base", cfg_, bricks_, Visibility::kShared, "test");
    ASSERT_TRUE(imported.ok()) << imported.status().ToString();
    ASSERT_TRUE(reg_->Tag("base@1", "stable").ok());
  }

  Result<Composition> ComposeText(const std::string& yaml) {
    BRICK_ASSIGN_OR_RETURN(SubmodelSpec spec, ParseSubmodelSpec(yaml, "spec.yaml"));
    return Compose(*reg_, spec);
  }

  int64_t Count(const char* what) {
    auto models = reg_->ListModels();
    EXPECT_TRUE(models.ok());
    if (std::string(what) == "manifests") return static_cast<int64_t>(models->size());
    auto bricks = reg_->ListBricks(BrickFilter{"", std::nullopt, true});
    EXPECT_TRUE(bricks.ok());
    return static_cast<int64_t>(bricks->size());
  }

  std::unique_ptr<Registry> reg_;
  ModelConfig cfg_;
  std::vector<BrickData> bricks_;
};

TEST_F(SubmodelTest, ComposeKeepsOnlyTheSelectedExpertsAndCountsWhatTheyCost) {
  auto c = ComposeText(R"(
model: base:stable
name: small
experts:
  mlp:
    drop: {0: [1, 3], 2: "0-2"}
  attention:
    top_k: 1
    keep: {"1-2": "0-1"}
)");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->base.Ref(), "base@1");
  EXPECT_EQ(c->config.k_att, 1);
  EXPECT_EQ(c->config.k_mlp, 2);
  EXPECT_EQ(c->config.mlp_removed, (std::vector<std::vector<int64_t>>{{1, 3}, {}, {0, 1, 2}}));
  EXPECT_EQ(c->config.att_removed, (std::vector<std::vector<int64_t>>{{}, {2}, {2, 3, 4}}));
  ASSERT_EQ(c->layers.size(), 3u);
  EXPECT_EQ(c->layers[0].mlp_kept, (std::vector<int64_t>{0, 2, 4, 5}));
  EXPECT_EQ(c->layers[2].att_kept, (std::vector<int64_t>{0, 1}));
  // 9 experts removed out of the base's 115 - 3*... bricks: count them directly.
  EXPECT_EQ(c->bricks.size(), bricks_.size() - 9);
  for (const BrickRecord& b : c->bricks)
    EXPECT_FALSE(b.kind == BrickKind::kMlpExpert && b.layer == 0 && (b.index == 1 || b.index == 3)) << b.name;
  EXPECT_LT(c->bytes_to_load, c->base_bytes);
  EXPECT_LT(c->params_total, c->base_params_total);
  EXPECT_LT(c->params_active, c->params_total);
  int64_t layer_bytes = 0;
  for (const LayerPlan& l : c->layers) layer_bytes += l.bytes;
  EXPECT_LT(layer_bytes, c->bytes_to_load);  // the rest: embedding, ln_f, lm head
}

TEST_F(SubmodelTest, RemovedExpertsLeaveTheRouterSoftmaxLikeACheckpointWithoutThem) {
  auto c = ComposeText(R"(
model: base@1
experts:
  mlp: {drop: {0: [1, 3], 1: 0, 2: "0-2"}}
  attention: {drop: {"1": 2, "2": [0, 4]}}
)");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  auto loaded = LoadComposition(*reg_, *c);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->bytes_read, c->bytes_to_load);
  auto [pcfg, pbricks] = PhysicallyPruned(cfg_, bricks_, {{}, {2}, {0, 4}}, {{1, 3}, {0}, {0, 1, 2}});
  auto pruned = Model::Build(pcfg, std::move(pbricks));
  ASSERT_TRUE(pruned.ok()) << pruned.status().ToString();
  const auto want = Logits(**pruned, kPrompt);
  const auto got = Logits(*loaded->model, kPrompt);
  EXPECT_LE(MaxAbsDiff(got, want), 1e-5f);
  // And removal changes the answer (the test would be vacuous otherwise).
  auto full = Model::Build(cfg_, bricks_);
  ASSERT_TRUE(full.ok());
  EXPECT_GT(MaxAbsDiff(Logits(**full, kPrompt), want), 1e-3f);
}

TEST_F(SubmodelTest, SavedSubmodelLoadsTheSameModelAndSavingAgainAddsNothing) {
  const std::string yaml = "model: base:stable\nname: small\nexperts:\n  mlp: {top_k: 1, keep: {0: \"0-2\"}}\n";
  auto c = ComposeText(yaml);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  auto saved = SaveComposition(*reg_, *c);
  ASSERT_TRUE(saved.ok()) << saved.status().ToString();
  EXPECT_EQ(saved->manifest.Ref(), "small@1");
  EXPECT_EQ(saved->manifest.base, "base@1");
  EXPECT_EQ(saved->new_bricks, 0);  // no plugin: every brick is the base's own
  EXPECT_EQ(saved->manifest.brick_ids.size(), c->bricks.size());
  auto m = reg_->ResolveModel("small");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->config.mlp_removed[0], (std::vector<int64_t>{3, 4, 5}));
  auto from_manifest = LoadManifestModel(*reg_, *m);
  auto from_spec = LoadComposition(*reg_, *c);
  ASSERT_TRUE(from_manifest.ok()) << from_manifest.status().ToString();
  ASSERT_TRUE(from_spec.ok()) << from_spec.status().ToString();
  EXPECT_EQ(Logits(*from_manifest->model, kPrompt), Logits(*from_spec->model, kPrompt));

  auto again = SaveComposition(*reg_, *c);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_FALSE(again->new_manifest);
  EXPECT_EQ(again->manifest.Ref(), "small@1");
}

// Export writes what the submodel runs as a plain checkpoint: fewer experts per layer, routers cut.
TEST_F(SubmodelTest, ExportedSubmodelIsACheckpointWithTheExpertsDeleted) {
  auto c = ComposeText(
      "model: base\nname: cut\nexperts:\n  mlp: {drop: {0: [0, 4], 2: 1}}\n  attention: {keep: {1: [0, 2]}}\n");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  auto saved = SaveComposition(*reg_, *c);
  ASSERT_TRUE(saved.ok()) << saved.status().ToString();
  const std::string dir = ::testing::TempDir() + "/submodel_export_" + std::to_string(getpid());
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(reg_->ExportModel(saved->manifest, dir).ok());
  auto ckpt = LoadHfCheckpoint(dir);
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(ckpt.ok()) << ckpt.status().ToString();
  EXPECT_EQ(ckpt->config.n_mlp_experts, (std::vector<int64_t>{4, 4, 4}));
  EXPECT_EQ(ckpt->config.n_att_experts, (std::vector<int64_t>{4, 2, 5}));
  EXPECT_FALSE(ckpt->config.HasRemovals());
  auto from_ckpt = Model::Build(ckpt->config, std::move(ckpt->bricks));
  auto from_reg = LoadManifestModel(*reg_, saved->manifest);
  ASSERT_TRUE(from_ckpt.ok()) << from_ckpt.status().ToString();
  ASSERT_TRUE(from_reg.ok()) << from_reg.status().ToString();
  EXPECT_EQ(Logits(**from_ckpt, kPrompt), Logits(*from_reg->model, kPrompt));
}

TEST_F(SubmodelTest, PluginOnTheFlyEqualsMergedAndMergedBricksHaveLineage) {
  const std::vector<std::string> targets = {"L0.attn.E1.wq", "L1.attn.E0.wo", "L0.mlp.E2.w1",
                                            "L2.mlp.E4.w2",  "L1.mlp.E3.w1",  "lm_head.weight"};
  auto base = reg_->ResolveModel("base");
  ASSERT_TRUE(base.ok());
  auto plugin = reg_->ImportPlugin("tuned", *base, RandomLoras(targets, 4, 5), Visibility::kPrivate, "test");
  ASSERT_TRUE(plugin.ok()) << plugin.status().ToString();
  EXPECT_EQ(plugin->manifest.kind, ManifestKind::kPlugin);

  const std::string spec =
      "model: base\nname: %s\nexperts: {mlp: {drop: {1: 3}}}\nplugins:\n"
      "  - {lora: tuned@1, scale: 0.5, merge: %s}\n";
  auto text = [&](const char* name, const char* merge) {
    char buf[256];
    std::snprintf(buf, sizeof buf, spec.c_str(), name, merge);
    return std::string(buf);
  };
  auto fly = ComposeText(text("fly", "false"));
  auto merged = ComposeText(text("merged", "true"));
  ASSERT_TRUE(fly.ok()) << fly.status().ToString();
  ASSERT_TRUE(merged.ok()) << merged.status().ToString();
  ASSERT_EQ(fly->plugins.size(), 1u);
  EXPECT_EQ(fly->plugins[0].bricks.size(), 5u);  // L1.mlp.E3 is removed: its lora is skipped
  EXPECT_EQ(fly->plugins[0].skipped, (std::vector<std::string>{"L1.mlp.E3.w1"}));

  auto lf = LoadComposition(*reg_, *fly);
  auto lm = LoadComposition(*reg_, *merged);
  ASSERT_TRUE(lf.ok()) << lf.status().ToString();
  ASSERT_TRUE(lm.ok()) << lm.status().ToString();
  const auto want = Logits(*lf->model, kPrompt);
  EXPECT_LE(MaxAbsDiff(Logits(*lm->model, kPrompt), want), 1e-4f);
  // Without the plugin the answer differs: the loras are really applied.
  auto plain = ComposeText("model: base\nexperts: {mlp: {drop: {1: 3}}}\n");
  ASSERT_TRUE(plain.ok());
  auto lp = LoadComposition(*reg_, *plain);
  ASSERT_TRUE(lp.ok());
  EXPECT_GT(MaxAbsDiff(Logits(*lp->model, kPrompt), want), 1e-3f);

  // Saved: on the fly pins the lora bricks with their scale; merged writes new bricks derived from
  // the originals, private because the plugin is.
  auto sf = SaveComposition(*reg_, *fly);
  auto sm = SaveComposition(*reg_, *merged);
  ASSERT_TRUE(sf.ok()) << sf.status().ToString();
  ASSERT_TRUE(sm.ok()) << sm.status().ToString();
  EXPECT_EQ(sf->new_bricks, 0);
  EXPECT_EQ(sf->manifest.plugin_scales.size(), 5u);
  for (const auto& [id, scale] : sf->manifest.plugin_scales) EXPECT_EQ(scale, 0.5);
  EXPECT_EQ(sm->new_bricks, 5);
  EXPECT_TRUE(sm->manifest.plugin_scales.empty());
  auto derived = reg_->GetBrick("merged/L0.mlp.E2");
  ASSERT_TRUE(derived.ok()) << derived.status().ToString();
  auto original = reg_->GetBrick("base/L0.mlp.E2");
  ASSERT_TRUE(original.ok());
  EXPECT_EQ(derived->parent_id, original->id);
  EXPECT_EQ(derived->visibility, Visibility::kPrivate);
  EXPECT_NE(derived->metadata_json.find("merge_lora"), std::string::npos) << derived->metadata_json;

  auto rf = LoadManifestModel(*reg_, sf->manifest);
  auto rm = LoadManifestModel(*reg_, sm->manifest);
  ASSERT_TRUE(rf.ok()) << rf.status().ToString();
  ASSERT_TRUE(rm.ok()) << rm.status().ToString();
  EXPECT_LE(MaxAbsDiff(Logits(*rf->model, kPrompt), want), 1e-6f);
  EXPECT_LE(MaxAbsDiff(Logits(*rm->model, kPrompt), want), 1e-4f);
  // An HF checkpoint has no place for an on-the-fly lora; the merged submodel exports.
  const std::string dir = ::testing::TempDir() + "/plugin_export_" + std::to_string(getpid());
  std::filesystem::remove_all(dir);
  Status refused = reg_->ExportModel(sf->manifest, dir);
  EXPECT_NE(refused.message().find("merge: true"), std::string::npos) << refused.ToString();
  ExportOptions allow;
  allow.allow_private = true;  // the merged bricks are private
  EXPECT_TRUE(reg_->ExportModel(sm->manifest, dir, allow).ok());
  std::filesystem::remove_all(dir);
  // A plugin is not runnable by itself.
  auto as_model = LoadManifestModel(*reg_, plugin->manifest);
  ASSERT_FALSE(as_model.ok());
  EXPECT_NE(as_model.status().message().find("is a plugin"), std::string::npos) << as_model.status().message();
}

// A saved submodel can be the base of another spec: its removals and its on-the-fly loras carry over,
// indices stay the original model's, and the result equals composing everything from the base at once.
TEST_F(SubmodelTest, SubmodelOfASubmodelKeepsItsPluginsAndSpeaksBaseIds) {
  auto base = reg_->ResolveModel("base");
  ASSERT_TRUE(base.ok());
  ASSERT_TRUE(reg_->ImportPlugin("tuned", *base, RandomLoras({"L0.mlp.E2.w1", "L2.mlp.E4.w2", "L1.attn.E0.wo"}, 4, 9),
                                 Visibility::kShared, "t")
                  .ok());
  auto first = ComposeText(
      "model: base\nname: first\nexperts: {mlp: {drop: {0: 1}}}\nplugins: [{lora: tuned@1, scale: 0.5}]\n");
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  ASSERT_TRUE(SaveComposition(*reg_, *first).ok());

  auto second = ComposeText("model: first\nname: second\nexperts: {mlp: {drop: {0: 3, 2: 4}}}\n");
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(second->config.mlp_removed, (std::vector<std::vector<int64_t>>{{1, 3}, {}, {4}}));
  ASSERT_EQ(second->plugins.size(), 1u);  // inherited from `first`, at its scale
  EXPECT_EQ(second->plugins[0].scale, 0.5);
  EXPECT_EQ(second->plugins[0].bricks.size(), 2u);
  EXPECT_EQ(second->plugins[0].skipped, (std::vector<std::string>{"L2.mlp.E4.w2"}));
  auto again = ComposeText("model: first\nexperts: {mlp: {drop: {0: 1}}}\n");
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.status().message().find("already removed from first@1"), std::string::npos) << again.status().ToString();

  auto direct = ComposeText(
      "model: base\nexperts: {mlp: {drop: {0: [1, 3], 2: 4}}}\nplugins: [{lora: tuned@1, scale: 0.5}]\n");
  ASSERT_TRUE(direct.ok()) << direct.status().ToString();
  auto a = LoadComposition(*reg_, *second);
  auto b = LoadComposition(*reg_, *direct);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(Logits(*a->model, kPrompt), Logits(*b->model, kPrompt));
  auto saved = SaveComposition(*reg_, *second);
  ASSERT_TRUE(saved.ok()) << saved.status().ToString();
  EXPECT_EQ(saved->manifest.base, "first@1");
  auto loaded = LoadManifestModel(*reg_, saved->manifest);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(Logits(*loaded->model, kPrompt), Logits(*b->model, kPrompt));
}

// Review findings, each a regression test: a merge saved on a submodel of a submodel, a plugin for
// the full model on a pruned base, a plugin made for other weights, the same plugin twice, a
// submodel's name taken by an import, and removing a manifest that others name as their base.
TEST_F(SubmodelTest, PluginsAndNamesAcrossSubmodelChains) {
  auto base = reg_->ResolveModel("base");
  ASSERT_TRUE(base.ok());
  ASSERT_TRUE(
      reg_->ImportPlugin("full", *base, RandomLoras({"L0.mlp.E1.w1", "L0.mlp.E2.w1"}, 2, 4), Visibility::kShared, "t")
          .ok());
  auto first = ComposeText("model: base\nname: first\nexperts: {mlp: {drop: {0: 1}}}\n");
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  ASSERT_TRUE(SaveComposition(*reg_, *first).ok());

  // On `first` (which removed L0.mlp.E1), the plugin's lora on E1 is skipped, the one on E2 merges,
  // and the merged brick is saved derived from the original model's brick.
  auto merged = ComposeText("model: first\nname: tuned\nplugins: [{lora: full, merge: true}]\n");
  ASSERT_TRUE(merged.ok()) << merged.status().ToString();
  EXPECT_EQ(merged->plugins[0].skipped, (std::vector<std::string>{"L0.mlp.E1.w1"}));
  auto saved = SaveComposition(*reg_, *merged);
  ASSERT_TRUE(saved.ok()) << saved.status().ToString();
  EXPECT_EQ(saved->new_bricks, 1);
  auto derived = reg_->GetBrick("tuned/L0.mlp.E2");
  auto original = reg_->GetBrick("base/L0.mlp.E2");
  ASSERT_TRUE(derived.ok() && original.ok());
  EXPECT_EQ(derived->parent_id, original->id);

  // Listed twice: one lora brick cannot carry two scales in a saved manifest.
  auto twice = ComposeText("model: base\nplugins: [{lora: full, scale: 1}, {lora: full, scale: 3}]\n");
  ASSERT_FALSE(twice.ok());
  EXPECT_NE(twice.status().message().find("is attached twice"), std::string::npos) << twice.status().ToString();

  // Made for other weights: base@2 is a re-import with a different seed.
  auto other = MakeRandomModel([&] {
    TestModelOptions o;
    o.layers = 3;
    o.d_model = 32;
    o.ffd_hidden = 48;
    o.gating_size = 16;
    o.vocab = 50;
    o.attn_experts_per_layer = {4, 3, 5};
    o.mlp_experts_per_layer = {6, 4, 5};
    o.dtype = DType::kF32;
    o.seed = 99;
    return o;
  }());
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE(reg_->Import("base", other->first, other->second, Visibility::kShared, "v2").ok());
  auto mismatch = ComposeText("model: base@2\nplugins: [{lora: full@1}]\n");
  ASSERT_FALSE(mismatch.ok());
  EXPECT_NE(mismatch.status().message().find("full@1 was made for base@1"), std::string::npos)
      << mismatch.status().ToString();

  // Names: an import cannot take a submodel's name; a base cannot go while others name it.
  auto taken = reg_->Import("first", cfg_, bricks_, Visibility::kShared, "t");
  ASSERT_FALSE(taken.ok());
  EXPECT_NE(taken.status().message().find("is a submodel composed from base@1"), std::string::npos)
      << taken.status().ToString();
  auto rm = reg_->Remove("first@1");
  ASSERT_FALSE(rm.ok());
  EXPECT_NE(rm.status().message().find("is the base of tuned@1"), std::string::npos) << rm.status().ToString();
  RemoveOptions force;
  force.force = true;
  EXPECT_FALSE(reg_->Remove("base@1", force).ok()) << "base@1 is the base of first@1 and full@1";
  EXPECT_TRUE(reg_->Remove("tuned@1").ok());
  EXPECT_TRUE(reg_->Remove("first@1").ok());
}

struct BadSpec {
  const char* name;
  const char* yaml;
  StatusCode code;
  const char* message;  // a substring of the error
};

class SubmodelErrorTest : public SubmodelTest, public ::testing::WithParamInterface<BadSpec> {};

TEST_P(SubmodelErrorTest, IsRefusedWithAClearErrorAndNothingSaved) {
  auto base = reg_->ResolveModel("base");
  ASSERT_TRUE(base.ok());
  // A plugin shaped for another model (d_model 16) and a private one, for the plugin cases.
  ASSERT_TRUE(
      reg_->ImportPlugin("narrow", *base, RandomLoras({"L0.mlp.E0.w1"}, 2, 3, 16, 48), Visibility::kShared, "t").ok());
  ASSERT_TRUE(reg_->ImportPlugin("mine", *base, RandomLoras({"L0.mlp.E0.w1"}, 2, 3), Visibility::kPrivate, "t").ok());
  const int64_t manifests = Count("manifests"), bricks = Count("bricks");
  const BadSpec& p = GetParam();
  auto c = ComposeText(p.yaml);
  if (c.ok()) {
    auto saved = SaveComposition(*reg_, *c);
    ASSERT_FALSE(saved.ok()) << p.name << ": composed and saved";
    c = saved.status();
  }
  ASSERT_FALSE(c.ok()) << p.name;
  EXPECT_EQ(c.status().code(), p.code) << c.status().ToString();
  EXPECT_NE(c.status().message().find(p.message), std::string::npos) << p.name << ": " << c.status().message();
  EXPECT_EQ(c.status().message().find('\n'), std::string::npos) << "one line: " << c.status().message();
  EXPECT_EQ(Count("manifests"), manifests);
  EXPECT_EQ(Count("bricks"), bricks);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, SubmodelErrorTest,
    ::testing::Values(
        BadSpec{"unknown_model", "model: nope\n", StatusCode::kNotFound, "spec.yaml: model: "},
        BadSpec{"unknown_tag", "model: base:beta\n", StatusCode::kNotFound, "beta"},
        BadSpec{"missing_version", "model: base@7\n", StatusCode::kNotFound, "base@7"},
        BadSpec{"layer_out_of_range", "model: base\nexperts: {mlp: {drop: {3: 0}}}\n", StatusCode::kInvalidArgument,
                "layer 3 is beyond the model"},
        BadSpec{"expert_out_of_range", "model: base\nexperts: {attention: {drop: {1: 3}}}\n",
                StatusCode::kInvalidArgument, "expert 3 of layer 1 is out of range (3 attention experts"},
        BadSpec{"keeps_nothing", "model: base\nexperts: {mlp: {drop: {1: \"0-3\"}}}\n", StatusCode::kInvalidArgument,
                "layer 1 would keep no MLP expert"},
        BadSpec{"top_k_too_large", "model: base\nexperts: {mlp: {top_k: 3, keep: {2: [0, 4]}}}\n",
                StatusCode::kInvalidArgument, "top_k 3 is larger than the 2 MLP experts layer 2 keeps"},
        BadSpec{"top_k_above_base", "model: base\nexperts: {attention: {top_k: 4}}\n", StatusCode::kInvalidArgument,
                "top_k 4 is larger than the 3 attention experts layer 1 keeps"},
        BadSpec{"plugin_is_a_model", "model: base\nplugins: [{lora: base}]\n", StatusCode::kInvalidArgument,
                "is a model, not a plugin"},
        BadSpec{"model_is_a_plugin", "model: mine\n", StatusCode::kInvalidArgument, "is a plugin, not a model"},
        BadSpec{"unknown_plugin", "model: base\nplugins: [{lora: ghost@1}]\n", StatusCode::kNotFound, "ghost"},
        BadSpec{"plugin_shape_mismatch", "model: base\nplugins: [{lora: narrow}]\n", StatusCode::kInvalidArgument,
                "does not fit base/L0.mlp.E0@1.w1"},
        BadSpec{
            "private_on_node",
            "model: base\nplugins: [{lora: mine}]\nplacement:\n  nodes: {cloud: {endpoint: \"tcp://10.0.0.2:7001\"}}\n"
            "  rules:\n    - {match: \"L0.mlp.*\", on: cloud}\n",
            StatusCode::kInvalidArgument,
                "brick base/L0.mlp.E0@1 carries private lora mine/L0.mlp.E0.w1@1, so it cannot be placed on node 'cloud'"},
        BadSpec{"placement_matches_nothing",
                "model: base\nplacement:\n  nodes: {cloud: {endpoint: \"tcp://10.0.0.2:7001\"}}\n"
                "  rules:\n    - {match: \"L*.mpl.E*\", on: cloud}\n",
                StatusCode::kInvalidArgument, "'L*.mpl.E*' matches no brick of this submodel"},
        BadSpec{"save_without_name", "model: base\n", StatusCode::kInvalidArgument, "`name:` is required"},
        BadSpec{"save_over_base", "model: base\nname: base\n", StatusCode::kInvalidArgument, "base model's own name"},
        BadSpec{"save_over_plugin", "model: base\nname: mine\n", StatusCode::kInvalidArgument, "already a plugin"}),
    [](const auto& info) { return std::string(info.param.name); });

TEST_F(SubmodelTest, SharedBricksMayBePlacedOnANodeAndPrivateOnesLocally) {
  ASSERT_TRUE(reg_->SetVisibility("base/L0.mlp.E1", Visibility::kPrivate).ok());
  auto c = ComposeText(R"(
model: base
placement:
  nodes: {cloud: {endpoint: "tcp://10.0.0.2:7001"}}
  rules:
    - {match: "L0.mlp.E1", on: local}
    - {match: "L*.mlp.E*", on: cloud}
)");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ASSERT_TRUE(c->placement.has_value());
  // Without the first rule the private expert would match the cloud rule.
  auto bad = ComposeText(
      "model: base\nplacement:\n  nodes: {cloud: {endpoint: \"tcp://10.0.0.2:7001\"}}\n"
      "  rules:\n    - {match: \"L*.mlp.E*\", on: cloud}\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("base/L0.mlp.E1@1"), std::string::npos) << bad.status().message();
}

TEST_F(SubmodelTest, PrivateBricksMayRunOnThisMachinesGpu) {
  ASSERT_TRUE(reg_->SetVisibility("base/L0.mlp.E1", Visibility::kPrivate).ok());
  // A GPU of this process is this device: private bricks may compute there.
  auto c = ComposeText("model: base\nplacement:\n  rules:\n    - {match: \"L0.mlp.E1\", on: cuda:0}\n");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  auto all = ComposeText("model: base\nplacement: {device: cuda:0}\n");
  ASSERT_TRUE(all.ok()) << all.status().ToString();
}

}  // namespace
}  // namespace brickrt
