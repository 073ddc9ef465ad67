// A tokenizer is part of the manifest (schema v5): its files are stored as blobs with the import,
// load back byte for byte as a working Tokenizer, are inherited by manifests saved from a base
// (compose, grow, prune all save through SaveManifest), are written by export, kept by gc while
// referenced, and a v4 registry migrates (refused read-only).
#include <gtest/gtest.h>

#include <filesystem>

#include "registry/registry.h"
#include "registry/tokenizer_files.h"
#include "registry_test_util.h"

namespace brickrt {
namespace {

using testing::ExpectMigratesToCurrent;
using testing::OpenOrDie;
using testing::RawDb;

class TokenizerStoreTest : public testing::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    auto files = ReadTokenizerFiles(std::string(BRICK_SOURCE_DIR) + "/tests/reference/tokenizer");
    ASSERT_TRUE(files.ok() && files->has_value()) << files.status().ToString();
    files_ = **files;
    auto [cfg, bricks] = testing::SmallModel();
    cfg_ = cfg;  // the registry leaves vocab checks to the importer (brick import): any config will do
    bricks_ = bricks;
    reg_ = OpenOrDie(Path("r.db"));
  }
  ManifestRecord ImportOk(const std::string& name, const TokenizerFiles& tok) {
    auto r = reg_->Import(name, cfg_, bricks_, Visibility::kShared, "ckpt", tok);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? r->manifest : ManifestRecord{};
  }

  TokenizerFiles files_;
  ModelConfig cfg_;
  std::vector<BrickData> bricks_;
  std::unique_ptr<Registry> reg_;
};

TEST_F(TokenizerStoreTest, ImportedTokenizerLoadsBackByteForByte) {
  ASSERT_EQ(files_.size(), 2u);  // the reference directory: merges.txt + vocab.json
  const ManifestRecord m = ImportOk("m", files_);
  ASSERT_EQ(m.tokenizer.size(), 2u);
  EXPECT_EQ(m.tokenizer[0].name, "merges.txt");
  EXPECT_EQ(m.tokenizer[1].name, "vocab.json");
  auto loaded = reg_->LoadTokenizerFiles(*reg_->ResolveModel("m"));
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(*loaded, files_);
  auto tok = reg_->LoadTokenizer(m);
  ASSERT_TRUE(tok.ok() && tok->has_value()) << tok.status().ToString();
  EXPECT_EQ((*tok)->vocab_size(), 50257);
  EXPECT_EQ((*tok)->Encode("def f(x):"), (std::vector<int32_t>{4299, 277, 7, 87, 2599}));

  // Identical again: no new manifest, no new blob. Without the tokenizer: a new manifest version.
  auto again = reg_->Import("m", cfg_, bricks_, Visibility::kShared, "ckpt", files_);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->new_manifest);
  EXPECT_EQ(again->new_blob_bytes, 0);
  const ManifestRecord bare = ImportOk("m", {});
  EXPECT_EQ(bare.Ref(), "m@2");
  EXPECT_TRUE(bare.tokenizer.empty());
  auto none = reg_->LoadTokenizer(bare);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
}

TEST_F(TokenizerStoreTest, SavedSubmodelInheritsItsBasesTokenizer) {
  const ManifestRecord m = ImportOk("m", files_);
  ManifestDraft draft;
  draft.name = "sub";
  draft.base = m.Ref();
  draft.config = m.config;
  for (int64_t id : m.brick_ids) draft.entries.push_back({.brick_id = id});
  auto saved = reg_->SaveManifest(draft);
  ASSERT_TRUE(saved.ok()) << saved.status().ToString();
  EXPECT_EQ(saved->manifest.tokenizer, m.tokenizer);
  auto tok = reg_->LoadTokenizer(saved->manifest);
  ASSERT_TRUE(tok.ok() && tok->has_value());
  // A base without a tokenizer gives none.
  const ManifestRecord bare = ImportOk("bare", {});
  draft.name = "sub2";
  draft.base = bare.Ref();
  auto saved2 = reg_->SaveManifest(draft);
  ASSERT_TRUE(saved2.ok());
  EXPECT_TRUE(saved2->manifest.tokenizer.empty());
}

TEST_F(TokenizerStoreTest, ExportWritesTheFilesAndGcKeepsReferencedBlobs) {
  const ManifestRecord m = ImportOk("m", files_);
  const std::string out = Path("export");
  ASSERT_TRUE(reg_->ExportModel(m, out).ok());
  auto exported = ReadTokenizerFiles(out);
  ASSERT_TRUE(exported.ok() && exported->has_value());
  EXPECT_EQ(**exported, files_);

  auto gc = reg_->CollectGarbage(false);
  ASSERT_TRUE(gc.ok());
  EXPECT_EQ(gc->blobs, 0);
  ASSERT_TRUE(reg_->LoadTokenizer(m).ok());
  // Once no manifest references them, gc drops the bricks' and the tokenizer's blobs.
  ASSERT_TRUE(reg_->Remove("m@1").ok());
  RawDb raw(Path("r.db"));
  EXPECT_EQ(raw.Int("SELECT count(*) FROM tokenizer_files"), 0);
  raw.Exec("DELETE FROM bricks");
  gc = reg_->CollectGarbage(false);
  ASSERT_TRUE(gc.ok());
  EXPECT_EQ(raw.Int("SELECT count(*) FROM blobs"), 0);
}

TEST_F(TokenizerStoreTest, DamagedTokenizerBlobIsCorruptOnLoad) {
  const ManifestRecord m = ImportOk("m", files_);
  {
    RawDb raw(Path("r.db"));
    raw.Exec("UPDATE blobs SET data = zeroblob(size) WHERE digest = '" + m.tokenizer[0].digest + "'");
  }
  auto tok = reg_->LoadTokenizer(m);
  ASSERT_FALSE(tok.ok());
  EXPECT_EQ(tok.status().code(), StatusCode::kCorrupt);
  EXPECT_NE(tok.status().message().find("tokenizer file merges.txt: digest mismatch"), std::string::npos)
      << tok.status().message();
  // Re-importing repairs it.
  ASSERT_TRUE(reg_->Import("m", cfg_, bricks_, Visibility::kShared, "ckpt", files_).ok());
  EXPECT_TRUE(reg_->LoadTokenizer(m).ok());
}

TEST_F(TokenizerStoreTest, BrokenFilesAreNamedInTheError) {
  TokenizerFiles broken = files_;
  broken[1].bytes = "{\"a\": ";
  auto tok = BuildTokenizer(broken, "ckpt");
  ASSERT_FALSE(tok.ok());
  EXPECT_EQ(tok.status().message().rfind("ckpt/vocab.json", 0), 0u) << tok.status().message();
  broken = files_;
  broken.push_back({"tokenizer_config.json", "[1]"});
  tok = BuildTokenizer(broken, "ckpt");
  ASSERT_FALSE(tok.ok());
  EXPECT_EQ(tok.status().message(), "ckpt/tokenizer_config.json: expected a JSON object");
  const std::string half = Path("half");
  std::filesystem::create_directories(half);
  testing::WriteBytes(half + "/vocab.json", "{}");
  auto read = ReadTokenizerFiles(half);
  ASSERT_FALSE(read.ok());
  EXPECT_NE(read.status().message().find("merges.txt is missing"), std::string::npos) << read.status().message();
  const std::string empty = Path("empty");
  std::filesystem::create_directories(empty);
  auto nothing = ReadTokenizerFiles(empty);
  ASSERT_TRUE(nothing.ok());
  EXPECT_FALSE(nothing->has_value());
}

// A v4 registry (made here by undoing migration 5 on a fresh one) is refused read-only, then migrated
// in place: the models stay, and a tokenizer can be stored.
TEST_F(TokenizerStoreTest, Version4RegistryMigratesToVersion5) {
  const std::string path = Path("v4.db");
  ASSERT_TRUE(OpenOrDie(path)->Import("m", cfg_, bricks_, Visibility::kShared, "").ok());
  {
    RawDb raw(path);
    raw.Exec("DROP TABLE tokenizer_files; PRAGMA user_version = 4");
  }
  auto reg = ExpectMigratesToCurrent(path, 5);
  ASSERT_NE(reg, nullptr);
  EXPECT_EQ(RawDb(path).Int("SELECT count(*) FROM sqlite_master WHERE name = 'tokenizer_files'"), 1);
  auto m = reg->ResolveModel("m");
  ASSERT_TRUE(m.ok());
  EXPECT_TRUE(m->tokenizer.empty());
  ASSERT_TRUE(reg->LoadBricks(*m).ok());
  auto with = reg->Import("m", cfg_, bricks_, Visibility::kShared, "", files_);
  ASSERT_TRUE(with.ok()) << with.status().ToString();
  EXPECT_TRUE(with->new_manifest);
  EXPECT_TRUE(reg->LoadTokenizer(with->manifest).ok());
}

}  // namespace
}  // namespace brickrt
