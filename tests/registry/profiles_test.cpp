// Expert profiles in the registry (schema v4): save / get / replace, removed with their manifest, the
// v3 -> v4 migration, the threshold rule, and a spec's `keep: {profile, threshold}` in Compose.
#include "registry/profiles.h"

#include <gtest/gtest.h>

#include <cmath>

#include "core/submodel_spec.h"
#include "registry/compose.h"
#include "registry/registry.h"
#include "registry_test_util.h"

namespace brickrt {
namespace {

using testing::ExpectMigratesToCurrent;
using testing::OpenOrDie;
using testing::RawDb;

// A profile of SmallModel (3 layers; attention experts 4, 3, 5; MLP experts 6, 4, 5) with chosen counts.
ExpertProfile MakeProfile(const ManifestRecord& m, const std::string& name) {
  ExpertProfile p;
  p.name = name;
  p.manifest_id = m.id;
  p.data_path = "data.ids";
  p.data_digest = std::string(64, 'a');
  p.tokens = 100;
  const std::vector<std::vector<int64_t>> att = {{100, 50, 29, 0}, {10, 10, 10}, {7, 1, 2, 3, 4}};
  const std::vector<std::vector<int64_t>> mlp = {{40, 39, 12, 11, 0, 100}, {5, 0, 0, 0}, {0, 0, 0, 0, 0}};
  for (int64_t l = 0; l < 3; ++l) {
    for (const bool a : {true, false}) {
      LayerProfile lp;
      lp.layer = l;
      lp.attention = a;
      lp.counts = (a ? att : mlp)[static_cast<size_t>(l)];
      for (int64_t c : lp.counts) lp.gate_mass.push_back(0.25 * static_cast<double>(c));
      p.layers.push_back(lp);
    }
  }
  return p;
}

class ProfilesTest : public testing::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    reg_ = OpenOrDie(Path("r.db"));
    auto [cfg, bricks] = testing::SmallModel();
    cfg_ = cfg;
    auto imported = reg_->Import("m", cfg, bricks, Visibility::kShared, "test");
    ASSERT_TRUE(imported.ok()) << imported.status().ToString();
    m_ = imported->manifest;
    auto [cfg2, bricks2] = testing::SmallModel(DType::kBF16, /*seed=*/8);
    auto other = reg_->Import("other", cfg2, bricks2, Visibility::kShared, "test");
    ASSERT_TRUE(other.ok());
    other_ = other->manifest;
  }
  Result<Composition> ComposeText(const std::string& yaml) {
    auto spec = ParseSubmodelSpec(yaml, "spec.yaml");
    if (!spec.ok()) return spec.status();
    return Compose(*reg_, *spec);
  }
  std::unique_ptr<Registry> reg_;
  ModelConfig cfg_;
  ManifestRecord m_, other_;
};

TEST_F(ProfilesTest, SaveGetReplaceAndList) {
  auto saved = reg_->SaveProfile(MakeProfile(m_, "p"));
  ASSERT_TRUE(saved.ok()) << saved.status().ToString();
  EXPECT_EQ(saved->manifest, "m@1");
  EXPECT_FALSE(saved->created_at.empty());
  auto got = reg_->GetProfile("p");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_EQ(got->layers.size(), 6u);
  EXPECT_EQ(got->layers[1].counts, (std::vector<int64_t>{40, 39, 12, 11, 0, 100}));
  EXPECT_FALSE(got->layers[1].attention);
  EXPECT_DOUBLE_EQ(got->layers[0].gate_mass[0], 25.0);
  EXPECT_EQ(got->tokens, 100);
  EXPECT_EQ(got->data_digest, std::string(64, 'a'));
  // The same name again replaces it.
  ExpertProfile again = MakeProfile(m_, "p");
  again.tokens = 7;
  ASSERT_TRUE(reg_->SaveProfile(again).ok());
  auto list = reg_->ListProfiles();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].tokens, 7);
  auto events = reg_->Events(1);
  ASSERT_TRUE(events.ok());
  EXPECT_EQ((*events)[0].kind, "profile");
}

TEST_F(ProfilesTest, BadNameUnknownProfileAndUnknownManifestAreErrors) {
  EXPECT_FALSE(reg_->SaveProfile(MakeProfile(m_, "a/b")).ok());
  ExpertProfile orphan = MakeProfile(m_, "o");
  orphan.manifest_id = 999;
  auto r = reg_->SaveProfile(orphan);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("manifest id 999"), std::string::npos) << r.status().message();
  auto missing = reg_->GetProfile("nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("no profile 'nope'"), std::string::npos);
}

TEST_F(ProfilesTest, RemovingTheManifestRemovesItsProfiles) {
  ASSERT_TRUE(reg_->SaveProfile(MakeProfile(m_, "p")).ok());
  ASSERT_TRUE(reg_->SaveProfile(MakeProfile(other_, "q")).ok());
  auto rm = reg_->Remove("m@1");
  ASSERT_TRUE(rm.ok()) << rm.status().ToString();
  EXPECT_FALSE(reg_->GetProfile("p").ok());
  EXPECT_TRUE(reg_->GetProfile("q").ok());
}

TEST_F(ProfilesTest, ThresholdRemovesRareExpertsButKeepsTopK) {
  const ExpertProfile p = MakeProfile(m_, "p");
  auto cut = ExpertsUnderThreshold(p, cfg_, /*attention=*/false, 0.3, 2);
  ASSERT_TRUE(cut.ok()) << cut.status().ToString();
  // Layer 0: 40 39 12 11 0 100 -> shares .4 .39 .12 .11 0 1: 2, 3, 4 go.
  EXPECT_EQ(cut->removed[0], (std::vector<int64_t>{2, 3, 4}));
  // Layer 1: 5 0 0 0 -> only expert 0 passes; top-k 2 keeps 0 and 1 (tie at 0: lower id).
  EXPECT_EQ(cut->removed[1], (std::vector<int64_t>{2, 3}));
  // Layer 2: never chosen: every share is 0; the two lowest ids stay.
  EXPECT_EQ(cut->removed[2], (std::vector<int64_t>{2, 3, 4}));
  ASSERT_EQ(cut->notes.size(), 2u);
  EXPECT_NE(cut->notes[0].find("layer 1"), std::string::npos) << cut->notes[0];
  EXPECT_NE(cut->notes[0].find("fewer than top_k 2"), std::string::npos) << cut->notes[0];
  // 0 removes nothing; 1 keeps only the busiest (and top-k).
  auto none = ExpertsUnderThreshold(p, cfg_, true, 0.0, 2);
  ASSERT_TRUE(none.ok());
  for (const auto& l : none->removed) EXPECT_TRUE(l.empty());
  auto all = ExpertsUnderThreshold(p, cfg_, true, 1.0, 1);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->removed[0], (std::vector<int64_t>{1, 2, 3}));
  EXPECT_TRUE(all->removed[1].empty());  // 10, 10, 10: every expert ties with the busiest
  for (double bad : {-0.1, 1.5, std::nan("")}) {
    auto r = ExpertsUnderThreshold(p, cfg_, true, bad, 2);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find("threshold must be in [0, 1]"), std::string::npos);
  }
  // A profile of a model with other expert counts does not fit.
  ModelConfig wider = cfg_;
  wider.n_mlp_experts[0] = 7;
  auto misfit = ExpertsUnderThreshold(p, wider, false, 0.3, 2);
  ASSERT_FALSE(misfit.ok());
  EXPECT_NE(misfit.status().message().find("does not fit"), std::string::npos) << misfit.status().message();
}

TEST_F(ProfilesTest, SpecKeepByProfileRemovesWhatTheThresholdSays) {
  ASSERT_TRUE(reg_->SaveProfile(MakeProfile(m_, "py-prof")).ok());
  auto c = ComposeText(
      "model: m\nname: m-py\nexperts:\n  mlp: {keep: {profile: py-prof, threshold: 0.3}}\n"
      "  attention:\n    keep: {profile: py-prof, threshold: 0.3}\n");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->config.mlp_removed[0], (std::vector<int64_t>{2, 3, 4}));
  EXPECT_EQ(c->config.att_removed[0], (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(c->layers[0].mlp_kept, (std::vector<int64_t>{0, 1, 5}));
  EXPECT_FALSE(c->notes.empty());
  // The same removal written as drop lists composes to the same config.
  auto d = ComposeText(
      "model: m\nexperts:\n  mlp: {drop: {0: [2, 3, 4], 1: [2, 3], 2: [2, 3, 4]}}\n"
      "  attention: {drop: {0: [2, 3], 2: [1, 2]}}\n");
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(c->config.mlp_removed, d->config.mlp_removed);
  EXPECT_EQ(c->config.att_removed, d->config.att_removed);
  // Saved, the submodel keeps lineage to m@1.
  auto saved = reg_->SaveManifest([&] {
    ManifestDraft draft;
    draft.name = c->name;
    draft.base = c->base.Ref();
    draft.config = c->config;
    for (const BrickRecord& b : c->bricks) draft.entries.push_back({b.id});
    return draft;
  }());
  ASSERT_TRUE(saved.ok()) << saved.status().ToString();
  EXPECT_EQ(saved->manifest.base, "m@1");
}

TEST_F(ProfilesTest, SpecProfileErrors) {
  ASSERT_TRUE(reg_->SaveProfile(MakeProfile(m_, "py-prof")).ok());
  auto unknown = ComposeText("model: m\nexperts:\n  mlp: {keep: {profile: nope, threshold: 0.3}}\n");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(unknown.status().message().rfind("spec.yaml: experts.mlp.keep.profile: no profile 'nope'", 0), 0u)
      << unknown.status().message();
  auto other = ComposeText("model: other\nexperts:\n  mlp: {keep: {profile: py-prof, threshold: 0.3}}\n");
  ASSERT_FALSE(other.ok());
  EXPECT_NE(other.status().message().find("profile py-prof was measured on m@1, not on other@1"), std::string::npos)
      << other.status().message();
  auto range = ParseSubmodelSpec("model: m\nexperts:\n  mlp: {keep: {profile: p, threshold: 1.5}}\n", "spec.yaml");
  ASSERT_FALSE(range.ok());
  EXPECT_NE(range.status().message().find("experts.mlp.keep.threshold: expected a threshold in [0, 1]"),
            std::string::npos)
      << range.status().message();
  EXPECT_EQ(range.status().message().rfind("spec.yaml:3:", 0), 0u) << range.status().message();
  auto no_threshold = ParseSubmodelSpec("model: m\nexperts:\n  mlp: {keep: {profile: p}}\n", "spec.yaml");
  ASSERT_FALSE(no_threshold.ok());
  EXPECT_NE(no_threshold.status().message().find("experts.mlp.keep.threshold: missing"), std::string::npos)
      << no_threshold.status().message();
  auto extra = ParseSubmodelSpec("model: m\nexperts:\n  mlp: {keep: {profile: p, threshold: 0.5, x: 1}}\n", "spec.yaml");
  EXPECT_FALSE(extra.ok());
}

// A v3 registry (made here by undoing migration 4 on a fresh one) is migrated in place: the profiles
// table appears, the models stay, and a profile can be stored.
TEST_F(ProfilesTest, Version3RegistryMigratesToVersion4) {
  const std::string path = Path("v3.db");
  {
    auto fresh = OpenOrDie(path);
    auto [cfg, bricks] = testing::SmallModel();
    ASSERT_TRUE(fresh->Import("m", cfg, bricks, Visibility::kShared, "").ok());
  }
  {
    RawDb raw(path);
    raw.Exec("DROP TABLE profiles; DROP TABLE tokenizer_files; PRAGMA user_version = 3");
    EXPECT_EQ(raw.Int("SELECT count(*) FROM sqlite_master WHERE name = 'profiles'"), 0);
  }
  auto reg = ExpectMigratesToCurrent(path, 5);
  ASSERT_NE(reg, nullptr);
  EXPECT_EQ(RawDb(path).Int("SELECT count(*) FROM sqlite_master WHERE name = 'profiles'"), 1);
  auto m = reg->ResolveModel("m");
  ASSERT_TRUE(m.ok());
  ASSERT_TRUE(reg->LoadBricks(*m).ok());
  ASSERT_TRUE(reg->SaveProfile(MakeProfile(*m, "p")).ok());
  EXPECT_TRUE(reg->GetProfile("p").ok());
}

}  // namespace
}  // namespace brickrt
