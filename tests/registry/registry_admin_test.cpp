// Registry administration: export back to HF layout (bit-identical tensors, private bricks refused),
// rm (refused while a manifest uses a brick, --force, lineage), gc of orphaned blobs (and vacuum),
// set-visibility; every refused call leaves the registry as it was.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/json.h"
#include "registry/hf_checkpoint.h"
#include "registry/registry.h"
#include "registry_test_util.h"

namespace brickrt {
namespace {

using testing::OpenOrDie;
using testing::RawDb;

class RegistryAdminTest : public testing::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    reg_ = OpenOrDie(":memory:");
    std::tie(cfg_, bricks_) = testing::SmallModel();
  }
  void ImportOk(const std::string& name, const std::vector<BrickData>& bricks, Visibility vis = Visibility::kShared) {
    auto r = reg_->Import(name, cfg_, bricks, vis, "/ckpt/" + name);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  // Every brick version, as refs, for before/after comparisons.
  std::vector<std::string> AllBricks() {
    BrickFilter f;
    f.all_versions = true;
    auto l = reg_->ListBricks(f);
    EXPECT_TRUE(l.ok());
    std::vector<std::string> out;
    for (const BrickRecord& b : *l) out.push_back(b.Ref() + " " + VisibilityName(b.visibility));
    return out;
  }
  std::vector<std::string> AllModels() {
    auto l = reg_->ListModels();
    EXPECT_TRUE(l.ok());
    std::vector<std::string> out;
    for (const ManifestRecord& m : *l) {
      out.push_back(m.Ref());
      for (const std::string& t : m.tags) out.push_back(m.name + ":" + t);
    }
    return out;
  }
  // bricks_ with every tensor's first byte changed: a second, fully different version of the model.
  std::vector<BrickData> Changed() {
    std::vector<BrickData> out = bricks_;
    for (BrickData& b : out) {
      Tensor t = b.tensors[0].second.Clone();
      static_cast<uint8_t*>(t.mutable_data())[0] ^= 0x40;
      b.tensors[0].second = t;
    }
    return out;
  }

  std::unique_ptr<Registry> reg_;
  ModelConfig cfg_;
  std::vector<BrickData> bricks_;
};

// make-test-model's layout -> import -> export -> both directories read back with the checkpoint
// loader give the same config and byte-identical tensors; per-layer expert counts differ (3 layers:
// 4/3/5 attention, 6/4/5 MLP experts), single file, sharded, and a tied head.
TEST_F(RegistryAdminTest, ExportGivesTensorsBitIdenticalToTheOriginalCheckpoint) {
  struct Case {
    const char* name;
    DType dtype;
    bool tied;
    uint64_t shard_bytes;
  };
  for (const Case& c : {Case{"single", DType::kBF16, false, 0}, Case{"sharded", DType::kF16, false, 4096},
                        Case{"tied", DType::kF32, true, 0}}) {
    SCOPED_TRACE(c.name);
    TestModelOptions o = testing::SmallModelOptions(c.dtype);
    o.tie_word_embeddings = c.tied;
    const std::string src = Path(std::string("src_") + c.name), out = Path(std::string("out_") + c.name);
    ASSERT_TRUE(MakeTestModel(src, o).ok());
    auto orig = LoadHfCheckpoint(src);
    ASSERT_TRUE(orig.ok()) << orig.status().ToString();
    auto imp = reg_->Import(c.name, orig->config, orig->bricks, Visibility::kShared, src);
    ASSERT_TRUE(imp.ok()) << imp.status().ToString();
    ExportOptions eo;
    eo.max_shard_bytes = c.shard_bytes;
    Status st = reg_->ExportModel(imp->manifest, out, eo);
    ASSERT_TRUE(st.ok()) << st.ToString();
    EXPECT_EQ(std::filesystem::exists(out + "/model.safetensors.index.json"), c.shard_bytes != 0);

    auto back = LoadHfCheckpoint(out);
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(back->config.n_att_experts, orig->config.n_att_experts);
    EXPECT_EQ(back->config.n_mlp_experts, orig->config.n_mlp_experts);
    EXPECT_EQ(back->config.tie_word_embeddings, c.tied);
    EXPECT_EQ(back->config.dtype, c.dtype);
    testing::ExpectSameBricks(orig->bricks, back->bricks);
  }
}

TEST_F(RegistryAdminTest, ExportRefusesPrivateBricksUnlessAllowedAndNonEmptyDirectories) {
  ImportOk("m", bricks_);
  auto vis = reg_->SetVisibility("m/L1.mlp.E2", Visibility::kPrivate);
  ASSERT_TRUE(vis.ok()) << vis.status().ToString();
  auto m = reg_->ResolveModel("m");
  ASSERT_TRUE(m.ok());
  Status st = reg_->ExportModel(*m, Path("out"));
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("m/L1.mlp.E2@1"), std::string::npos) << st.message();
  EXPECT_FALSE(std::filesystem::exists(Path("out"))) << "a refused export writes nothing";

  ExportOptions allow;
  allow.allow_private = true;
  ASSERT_TRUE(reg_->ExportModel(*m, Path("out"), allow).ok());
  // A second export into the same (now non-empty) directory would mix with what is there.
  st = reg_->ExportModel(*m, Path("out"), allow);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("not empty"), std::string::npos) << st.message();
}

TEST_F(RegistryAdminTest, RemovingAUsedBrickIsRefusedNamingTheManifestsAndChangesNothing) {
  ImportOk("m", bricks_);
  ImportOk("m", Changed());  // m@2: every brick at version 2
  ASSERT_TRUE(reg_->Tag("m@1", "old").ok());
  const auto bricks_before = AllBricks();
  const auto models_before = AllModels();

  auto r = reg_->Remove("m/L0.mlp.E1@1");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("m@1"), std::string::npos) << r.status().message();
  EXPECT_EQ(r.status().message().find("m@2"), std::string::npos) << r.status().message();
  // NAME without a version means every version: both manifests use one of them.
  r = reg_->Remove("m/L0.mlp.E1");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("m@1, m@2"), std::string::npos) << r.status().message();
  EXPECT_EQ(AllBricks(), bricks_before);
  EXPECT_EQ(AllModels(), models_before);

  // Bad references.
  EXPECT_EQ(reg_->Remove("m").status().code(), StatusCode::kInvalidArgument);      // which version?
  EXPECT_EQ(reg_->Remove("m:old").status().code(), StatusCode::kInvalidArgument);  // a tag is not a version
  EXPECT_EQ(reg_->Remove("m@9").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(reg_->Remove("m/L7.mlp.E0").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(reg_->Remove("m/L0.mlp.E1@x").status().code(), StatusCode::kInvalidArgument);
}

TEST_F(RegistryAdminTest, RemovingTheManifestFirstThenTheBrickWorksAndKeepsLineage) {
  ImportOk("m", bricks_);
  ImportOk("m", Changed());
  ASSERT_TRUE(reg_->Tag("m@1", "old").ok());
  auto r = reg_->Remove("m@1");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->manifests, std::vector<std::string>{"m@1"});
  EXPECT_EQ(r->tags, std::vector<std::string>{"m:old"});
  EXPECT_TRUE(r->bricks.empty());
  EXPECT_EQ(reg_->ResolveModel("m:old").status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(reg_->GetBrick("m/L0.mlp.E1@1").ok()) << "a manifest's bricks stay";

  r = reg_->Remove("m/L0.mlp.E1@1");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->bricks, std::vector<std::string>{"m/L0.mlp.E1@1"});
  auto v2 = reg_->GetBrick("m/L0.mlp.E1");
  ASSERT_TRUE(v2.ok());
  EXPECT_EQ(v2->version, 2);
  EXPECT_FALSE(v2->parent_id) << "v2's parent was removed; it had none to pass on";
  // m@2 still loads.
  auto m2 = reg_->ResolveModel("m@2");
  ASSERT_TRUE(m2.ok());
  EXPECT_TRUE(reg_->LoadBricks(*m2).ok());

  auto events = reg_->Events(1);
  ASSERT_TRUE(events.ok());
  EXPECT_EQ(events->front().kind, "rm");
  EXPECT_EQ(events->front().subject, "m/L0.mlp.E1@1");
}

TEST_F(RegistryAdminTest, ForceRemovesTheManifestsThatUseTheBrickAndDryRunChangesNothing) {
  ImportOk("m", bricks_);
  ImportOk("m", Changed());
  ASSERT_TRUE(reg_->Tag("m@2", "stable").ok());
  const auto bricks_before = AllBricks();
  const auto models_before = AllModels();
  RemoveOptions dry;
  dry.force = true;
  dry.dry_run = true;
  auto r = reg_->Remove("m/embed", dry);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->manifests, (std::vector<std::string>{"m@1", "m@2"}));
  EXPECT_EQ(r->bricks, (std::vector<std::string>{"m/embed@1", "m/embed@2"}));
  EXPECT_EQ(AllBricks(), bricks_before);
  EXPECT_EQ(AllModels(), models_before);

  RemoveOptions force;
  force.force = true;
  r = reg_->Remove("m/embed", force);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->tags, std::vector<std::string>{"m:stable"});
  EXPECT_TRUE(AllModels().empty());
  EXPECT_EQ(AllBricks().size(), bricks_before.size() - 2);
  EXPECT_EQ(reg_->GetBrick("m/embed").status().code(), StatusCode::kNotFound);
}

TEST_F(RegistryAdminTest, GcDropsOnlyOrphanedBlobsAndVacuumShrinksTheFile) {
  reg_ = OpenOrDie(Path("r.db"));
  ImportOk("m", bricks_);
  ImportOk("m", Changed());
  auto none = reg_->CollectGarbage(false);
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_EQ(none->blobs, 0);

  // Remove m@1 and its version-1 bricks: their payloads become orphans.
  ASSERT_TRUE(reg_->Remove("m@1").ok());
  for (const BrickData& b : bricks_) ASSERT_TRUE(reg_->Remove("m/" + b.Name() + "@1").ok()) << b.Name();
  auto gc = reg_->CollectGarbage(false);
  ASSERT_TRUE(gc.ok()) << gc.status().ToString();
  EXPECT_EQ(gc->blobs, static_cast<int64_t>(bricks_.size()));
  EXPECT_EQ(gc->bytes, testing::PayloadBytes(bricks_));
  EXPECT_GE(gc->free_bytes_after, gc->bytes / 2) << "the pages are free, the file did not shrink";
  EXPECT_EQ(RawDb(Path("r.db")).Int("SELECT count(*) FROM blobs"), static_cast<int64_t>(bricks_.size()));

  // What remains is intact.
  auto m2 = reg_->ResolveModel("m@2");
  ASSERT_TRUE(m2.ok());
  auto loaded = reg_->LoadBricks(*m2);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  testing::ExpectSameBricks(Changed(), *loaded);

  auto vac = reg_->CollectGarbage(true);
  ASSERT_TRUE(vac.ok()) << vac.status().ToString();
  EXPECT_EQ(vac->blobs, 0);
  EXPECT_LT(vac->db_bytes_after, vac->db_bytes_before);
  EXPECT_EQ(vac->free_bytes_after, 0);
  EXPECT_LE(static_cast<int64_t>(std::filesystem::file_size(Path("r.db"))), vac->db_bytes_after);
  EXPECT_TRUE(reg_->LoadBricks(*m2).ok());
  auto events = reg_->Events(1);
  ASSERT_TRUE(events.ok());
  EXPECT_EQ(events->front().kind, "gc");
}

TEST_F(RegistryAdminTest, SetVisibilityOnAModelOrOneBrickRoundTrips) {
  ImportOk("m", bricks_);
  auto r = reg_->SetVisibility("m", Visibility::kPrivate);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->changed.size(), bricks_.size());
  for (const std::string& b : AllBricks()) EXPECT_NE(b.find("private"), std::string::npos) << b;

  r = reg_->SetVisibility("m/L2.attn.E4@1", Visibility::kShared);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->changed, std::vector<std::string>{"m/L2.attn.E4@1"});
  EXPECT_EQ(reg_->GetBrick("m/L2.attn.E4")->visibility, Visibility::kShared);
  EXPECT_EQ(reg_->GetBrick("m/L2.attn.E3")->visibility, Visibility::kPrivate);

  r = reg_->SetVisibility("m@1", Visibility::kShared);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->unchanged, 1);
  EXPECT_EQ(r->changed.size(), bricks_.size() - 1);
  auto events = reg_->Events(1);
  ASSERT_TRUE(events.ok());
  EXPECT_EQ(events->front().kind, "visibility");
  EXPECT_EQ(reg_->SetVisibility("nosuch", Visibility::kShared).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(reg_->SetVisibility("m/nosuch", Visibility::kShared).status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace brickrt
