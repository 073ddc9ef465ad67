// Registry::Import and the read side: dedup on re-import, versions and lineage when one brick changes,
// listing with globs/kinds, brick and model references, tags, events, and rejected imports.
#include <gtest/gtest.h>

#include <thread>

#include "core/json.h"
#include "core/sha256.h"
#include "registry/registry.h"
#include "registry_test_util.h"

namespace brickrt {
namespace {

using testing::OpenOrDie;
using testing::RawDb;

// Registry under test is in memory unless a test needs the file.
class RegistryImportTest : public testing::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    reg_ = OpenOrDie(":memory:");
    std::tie(cfg_, bricks_) = testing::SmallModel();
  }
  ImportResult ImportOk(const std::string& name, const std::vector<BrickData>& bricks,
                        Visibility vis = Visibility::kShared) {
    auto r = reg_->Import(name, cfg_, bricks, vis, "/ckpt/" + name);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : ImportResult{};
  }
  // A copy of bricks_ with one byte of `brick`'s first tensor changed (storage cloned, not shared).
  std::vector<BrickData> WithChanged(const std::string& brick) {
    std::vector<BrickData> out = bricks_;
    for (BrickData& b : out) {
      if (b.Name() != brick) continue;
      Tensor t = b.tensors[0].second.Clone();
      static_cast<uint8_t*>(t.mutable_data())[3] ^= 0x40;
      b.tensors[0].second = t;
    }
    return out;
  }

  std::unique_ptr<Registry> reg_;
  ModelConfig cfg_;
  std::vector<BrickData> bricks_;
};

TEST_F(RegistryImportTest, ImportRecordsEveryBrickWithDigestAndTensors) {
  const ImportResult r = ImportOk("m", bricks_);
  EXPECT_TRUE(r.new_manifest);
  EXPECT_EQ(r.new_bricks, static_cast<int>(bricks_.size()));
  EXPECT_EQ(r.reused_bricks, 0);
  EXPECT_EQ(r.new_blob_bytes, testing::PayloadBytes(bricks_));
  EXPECT_EQ(r.manifest.Ref(), "m@1");
  EXPECT_EQ(r.manifest.source, "/ckpt/m");
  EXPECT_EQ(r.manifest.config.n_mlp_experts, cfg_.n_mlp_experts);  // per layer, not the maximum
  EXPECT_EQ(r.manifest.config.n_att_experts, cfg_.n_att_experts);
  EXPECT_EQ(r.manifest.config.dtype, cfg_.dtype);
  ASSERT_EQ(r.manifest.brick_ids.size(), bricks_.size());

  auto e = reg_->GetBrick("m/L1.mlp.E2");
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  const BrickData* want = nullptr;
  for (const BrickData& b : bricks_) want = b.Name() == "L1.mlp.E2" ? &b : want;
  ASSERT_NE(want, nullptr);
  EXPECT_EQ(e->Ref(), "m/L1.mlp.E2@1");
  EXPECT_EQ(e->kind, BrickKind::kMlpExpert);
  EXPECT_EQ(e->layer, 1);
  EXPECT_EQ(e->index, 2);
  EXPECT_EQ(e->visibility, Visibility::kShared);
  EXPECT_FALSE(e->parent_id);
  EXPECT_EQ(e->bytes, static_cast<int64_t>(want->nbytes()));
  EXPECT_EQ(e->created_at.size(), 24u) << e->created_at;  // 2024-05-01T12:34:56.789Z
  ASSERT_EQ(e->tensors.size(), 2u);
  EXPECT_EQ(e->tensors[0].name, "w1");
  EXPECT_EQ(e->tensors[0].shape, (Shape{32, 48}));
  EXPECT_EQ(e->tensors[1].offset, e->tensors[0].bytes);
  Sha256 h;
  for (const auto& [n, t] : want->tensors) h.Update(t.data(), t.nbytes());
  const auto d = h.Finish();
  EXPECT_EQ(e->digest, ToHex(d.data(), d.size()));
}

TEST_F(RegistryImportTest, ReimportingIdenticalContentWritesNoBlobsBricksOrManifest) {
  const std::string path = Path("r.db");
  // A bigger model so that any payload rewrite would dwarf the metadata growth.
  TestModelOptions o = testing::SmallModelOptions();
  o.d_model = 128;
  o.ffd_hidden = 256;
  auto model = MakeRandomModel(o);
  ASSERT_TRUE(model.ok());
  const auto& [cfg, bricks] = *model;
  ASSERT_TRUE(OpenOrDie(path)->Import("m", cfg, bricks, Visibility::kShared, "a").ok());
  const auto size_before = std::filesystem::file_size(path);
  const int64_t blobs_before = RawDb(path).Int("SELECT count(*) FROM blobs");

  auto again = OpenOrDie(path)->Import("m", cfg, bricks, Visibility::kShared, "b");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_FALSE(again->new_manifest);
  EXPECT_EQ(again->new_bricks, 0);
  EXPECT_EQ(again->reused_bricks, static_cast<int>(bricks.size()));
  EXPECT_EQ(again->new_blob_bytes, 0);
  EXPECT_EQ(again->manifest.Ref(), "m@1");

  RawDb raw(path);
  EXPECT_EQ(raw.Int("SELECT count(*) FROM blobs"), blobs_before);
  EXPECT_EQ(raw.Int("SELECT count(*) FROM bricks"), static_cast<int64_t>(bricks.size()));
  EXPECT_EQ(raw.Int("SELECT count(*) FROM manifests"), 1);
  EXPECT_EQ(raw.Int("SELECT count(*) FROM events WHERE kind = 'import'"), 2);
  const auto size_after = std::filesystem::file_size(path);
  EXPECT_GT(testing::PayloadBytes(bricks), 1 << 20);
  EXPECT_LE(size_after, size_before + 2 * 65536) << "the file grew by more than two pages of metadata";
}

TEST_F(RegistryImportTest, ChangingOneExpertVersionsOnlyThatBrickAndTheManifest) {
  const ImportResult v1 = ImportOk("m", bricks_);
  const ImportResult v2 = ImportOk("m", WithChanged("L1.mlp.E2"));
  EXPECT_TRUE(v2.new_manifest);
  EXPECT_EQ(v2.new_bricks, 1);
  EXPECT_EQ(v2.reused_bricks, static_cast<int>(bricks_.size()) - 1);
  EXPECT_EQ(v2.manifest.Ref(), "m@2");
  EXPECT_GT(v2.new_blob_bytes, 0);

  auto old_e = reg_->GetBrick("m/L1.mlp.E2@1");
  auto new_e = reg_->GetBrick("m/L1.mlp.E2");
  ASSERT_TRUE(old_e.ok() && new_e.ok());
  EXPECT_EQ(new_e->version, 2);
  ASSERT_TRUE(new_e->parent_id);
  EXPECT_EQ(*new_e->parent_id, old_e->id);
  EXPECT_NE(new_e->digest, old_e->digest);
  // The manifests differ in exactly that position.
  int differing = 0;
  for (size_t i = 0; i < v1.manifest.brick_ids.size(); ++i)
    differing += v1.manifest.brick_ids[i] != v2.manifest.brick_ids[i];
  EXPECT_EQ(differing, 1);
  EXPECT_EQ(reg_->GetBrick("m/L1.mlp.E1")->version, 1);

  // Going back to the original content: version 3 of that brick (lineage keeps moving forward), but
  // its payload is already stored, so no blob is written.
  const ImportResult v3 = ImportOk("m", bricks_);
  EXPECT_EQ(v3.manifest.Ref(), "m@3");
  EXPECT_EQ(v3.new_bricks, 1);
  EXPECT_EQ(v3.new_blob_bytes, 0);
  auto e3 = reg_->GetBrick("m/L1.mlp.E2");
  ASSERT_TRUE(e3.ok());
  EXPECT_EQ(e3->version, 3);
  EXPECT_EQ(e3->digest, old_e->digest);
  EXPECT_EQ(*e3->parent_id, new_e->id);
}

TEST_F(RegistryImportTest, ReimportAsPrivateMakesPrivateVersionsWithoutNewPayloads) {
  ImportOk("m", bricks_);
  const ImportResult r = ImportOk("m", bricks_, Visibility::kPrivate);
  EXPECT_EQ(r.new_bricks, static_cast<int>(bricks_.size()));
  EXPECT_EQ(r.new_blob_bytes, 0);
  EXPECT_EQ(reg_->GetBrick("m/embed")->visibility, Visibility::kPrivate);
}

TEST_F(RegistryImportTest, ListBricksFiltersByGlobKindAndVersion) {
  ImportOk("m", bricks_);
  ImportOk("m", WithChanged("L1.mlp.E2"));
  ImportOk("other", bricks_);
  const size_t n = bricks_.size();

  auto all = reg_->ListBricks({});
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_EQ(all->size(), 2 * n);  // latest versions only
  BrickFilter every;
  every.all_versions = true;
  EXPECT_EQ(reg_->ListBricks(every)->size(), 2 * n + 1);

  BrickFilter layer0{"m/L0.*", std::nullopt, false};
  auto l0 = reg_->ListBricks(layer0);
  ASSERT_TRUE(l0.ok());
  EXPECT_EQ(l0->size(), 2u + 2u + 4u + 6u);  // ln1, ln2, two routers, 4 attn + 6 mlp experts
  for (const BrickRecord& b : *l0) EXPECT_EQ(b.name.rfind("m/L0.", 0), 0u) << b.name;

  BrickFilter norms{"m/L?.ln1", std::nullopt, false};
  EXPECT_EQ(reg_->ListBricks(norms)->size(), 3u);

  BrickFilter mlp{"m/*", BrickKind::kMlpExpert, false};
  auto experts = reg_->ListBricks(mlp);
  ASSERT_TRUE(experts.ok());
  EXPECT_EQ(experts->size(), 6u + 4u + 5u);
  for (const BrickRecord& b : *experts) EXPECT_EQ(b.kind, BrickKind::kMlpExpert);

  BrickFilter history{"m/L1.mlp.E2", std::nullopt, true};
  auto versions = reg_->ListBricks(history);
  ASSERT_TRUE(versions.ok());
  ASSERT_EQ(versions->size(), 2u);
  EXPECT_EQ((*versions)[0].version, 1);
  EXPECT_EQ((*versions)[1].version, 2);

  BrickFilter bracket{"m/[L0]*", std::nullopt, false};  // '[' is literal, not a character class
  EXPECT_TRUE(reg_->ListBricks(bracket)->empty());
}

TEST_F(RegistryImportTest, BrickReferencesResolveOrNameTheRef) {
  ImportOk("m", bricks_);
  EXPECT_EQ(reg_->GetBrick("m/ln_f@1")->Ref(), "m/ln_f@1");
  EXPECT_EQ(reg_->GetBrick("L2.attn.router")->Ref(), "m/L2.attn.router@1");  // unique across models

  auto unknown = reg_->GetBrick("m/L9.mlp.E0");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), StatusCode::kNotFound);
  EXPECT_NE(unknown.status().message().find("'m/L9.mlp.E0'"), std::string::npos) << unknown.status().message();

  auto no_version = reg_->GetBrick("m/ln_f@4");
  ASSERT_FALSE(no_version.ok());
  EXPECT_EQ(no_version.status().code(), StatusCode::kNotFound);
  EXPECT_NE(no_version.status().message().find("latest is m/ln_f@1"), std::string::npos)
      << no_version.status().message();

  for (const char* bad : {"m/ln_f@", "m/ln_f@0", "m/ln_f@x", "@1"}) {
    auto r = reg_->GetBrick(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << bad;
  }

  ImportOk("n", bricks_);
  auto ambiguous = reg_->GetBrick("L2.attn.router");
  ASSERT_FALSE(ambiguous.ok());
  EXPECT_EQ(ambiguous.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(ambiguous.status().message().find("m/L2.attn.router, n/L2.attn.router"), std::string::npos)
      << ambiguous.status().message();
}

TEST_F(RegistryImportTest, ModelReferencesAndTags) {
  ImportOk("m", bricks_);
  ImportOk("m", WithChanged("L0.attn.E1"));
  EXPECT_EQ(reg_->ResolveModel("m")->Ref(), "m@2");
  EXPECT_EQ(reg_->ResolveModel("m@1")->Ref(), "m@1");

  ASSERT_TRUE(reg_->Tag("m@1", "stable").ok());
  EXPECT_EQ(reg_->ResolveModel("m:stable")->Ref(), "m@1");
  EXPECT_EQ(reg_->ResolveModel("m@1")->tags, std::vector<std::string>{"stable"});
  ASSERT_TRUE(reg_->Tag("m", "stable").ok());  // moves the tag to the latest
  EXPECT_EQ(reg_->ResolveModel("m:stable")->Ref(), "m@2");
  EXPECT_TRUE(reg_->ResolveModel("m@1")->tags.empty());

  auto models = reg_->ListModels();
  ASSERT_TRUE(models.ok());
  ASSERT_EQ(models->size(), 2u);
  EXPECT_EQ((*models)[1].tags, std::vector<std::string>{"stable"});

  auto events = reg_->Events(1);
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 1u);
  EXPECT_EQ((*events)[0].kind, "tag");
  EXPECT_EQ((*events)[0].subject, "m:stable");
  auto detail = ParseJson((*events)[0].detail);
  ASSERT_TRUE(detail.ok());
  EXPECT_EQ(detail->Find("previous")->as_string(), "m@1");
  EXPECT_EQ(detail->Find("manifest")->as_string(), "m@2");

  for (const char* ref : {"nope", "nope@1", "m:nosuch"}) {
    auto r = reg_->ResolveModel(ref);
    ASSERT_FALSE(r.ok()) << ref;
    EXPECT_EQ(r.status().code(), StatusCode::kNotFound) << ref;
    EXPECT_NE(r.status().message().find(std::string("'") + ref + "'"), std::string::npos) << r.status().message();
  }
  auto missing = reg_->ResolveModel("m@9");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("latest is m@2"), std::string::npos) << missing.status().message();
  EXPECT_EQ(reg_->Tag("nope", "x").code(), StatusCode::kNotFound);
  for (const char* bad : {"", "a b", "12", "x:y", "x@y", "x/y"}) {
    EXPECT_EQ(reg_->Tag("m", bad).code(), StatusCode::kInvalidArgument) << bad;
  }
}

TEST_F(RegistryImportTest, ImportIsLoggedAsAnEvent) {
  ImportOk("m", bricks_);
  auto events = reg_->Events();
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 1u);
  const Registry::Event& e = (*events)[0];
  EXPECT_EQ(e.kind, "import");
  EXPECT_EQ(e.subject, "m@1");
  auto detail = ParseJson(e.detail);
  ASSERT_TRUE(detail.ok()) << e.detail;
  EXPECT_EQ(*detail->Find("new_bricks")->as_int64(), static_cast<int64_t>(bricks_.size()));
  EXPECT_EQ(detail->Find("source")->as_string(), "/ckpt/m");
}

TEST_F(RegistryImportTest, BadImportsAreRejectedAndWriteNothing) {
  for (const char* name : {"", "a/b", "a@b", "a:b", "a b"}) {
    auto r = reg_->Import(name, cfg_, bricks_, Visibility::kShared, "");
    ASSERT_FALSE(r.ok()) << name;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << name;
  }
  std::vector<BrickData> dup = bricks_;
  dup.push_back(bricks_[5]);
  auto r = reg_->Import("m", cfg_, dup, Visibility::kShared, "");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("m/" + bricks_[5].Name()), std::string::npos) << r.status().message();
  EXPECT_FALSE(reg_->Import("m", cfg_, {}, Visibility::kShared, "").ok());
  EXPECT_TRUE(reg_->ListBricks({})->empty());
  EXPECT_TRUE(reg_->ListModels()->empty());
  EXPECT_TRUE(reg_->Events()->empty());
}

TEST_F(RegistryImportTest, ConcurrentImportsIntoOneFileBothLand) {
  const std::string path = Path("r.db");
  ASSERT_NE(OpenOrDie(path), nullptr);  // create the schema first
  auto other = testing::SmallModel(DType::kBF16, /*seed=*/99);
  Status st_a, st_b;
  std::thread a([&] {
    auto reg = OpenOrDie(path);
    st_a = reg->Import("a", cfg_, bricks_, Visibility::kShared, "").status();
  });
  std::thread b([&] {
    auto reg = OpenOrDie(path);
    st_b = reg->Import("b", other.first, other.second, Visibility::kShared, "").status();
  });
  a.join();
  b.join();
  ASSERT_TRUE(st_a.ok()) << st_a.ToString();
  ASSERT_TRUE(st_b.ok()) << st_b.ToString();
  auto reg = OpenOrDie(path);
  EXPECT_EQ(reg->ListModels()->size(), 2u);
  EXPECT_EQ(reg->ListBricks({})->size(), 2 * bricks_.size());
}

}  // namespace
}  // namespace brickrt
