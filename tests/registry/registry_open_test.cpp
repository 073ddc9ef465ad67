// Registry::Open: schema creation (page size, WAL, version), reopening, the default path, and each
// way a path can be wrong (missing, a directory, not SQLite, foreign SQLite, too new, read-only).
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <optional>

#include "registry/registry.h"
#include "registry_test_util.h"

namespace brickrt {
namespace {

using testing::ExpectMigratesToCurrent;
using testing::OpenOrDie;
using testing::RawDb;

class RegistryOpenTest : public testing::TempDirTest {};

TEST(RegistryOpen, MemoryRegistryStartsEmptyAtTheCurrentSchema) {
  auto reg = OpenOrDie(":memory:");
  ASSERT_NE(reg, nullptr);
  EXPECT_EQ(reg->path(), ":memory:");
  EXPECT_EQ(reg->schema_version(), 5);
  auto models = reg->ListModels();
  ASSERT_TRUE(models.ok()) << models.status().ToString();
  EXPECT_TRUE(models->empty());
  auto bricks = reg->ListBricks({});
  ASSERT_TRUE(bricks.ok()) << bricks.status().ToString();
  EXPECT_TRUE(bricks->empty());
  auto events = reg->Events();
  ASSERT_TRUE(events.ok());
  EXPECT_TRUE(events->empty());
}

TEST_F(RegistryOpenTest, CreatesFileWithLargePagesAndWalThenReopens) {
  const std::string path = Path("sub/dir/registry.db");  // Open creates the missing directories
  auto [cfg, bricks] = testing::SmallModel();
  {
    auto reg = OpenOrDie(path);
    ASSERT_NE(reg, nullptr);
    ASSERT_TRUE(reg->Import("m", cfg, bricks, Visibility::kShared, "test").ok());
  }
  {
    RawDb raw(path);
    EXPECT_EQ(raw.Int("PRAGMA page_size"), 65536);
    EXPECT_EQ(raw.Text("PRAGMA journal_mode"), "wal");
    EXPECT_EQ(raw.Int("PRAGMA user_version"), 5);
    EXPECT_EQ(raw.Text("SELECT value FROM schema_info WHERE key = 'application'"), "brickrt");
  }
  OpenOptions no_create;
  no_create.create = false;
  auto reg = OpenOrDie(path, no_create);
  ASSERT_NE(reg, nullptr);
  EXPECT_EQ(reg->schema_version(), 5);
  auto m = reg->ResolveModel("m");
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->brick_ids.size(), bricks.size());
}

TEST_F(RegistryOpenTest, ReadOnlyOpenReadsButRefusesWrites) {
  const std::string path = Path("r.db");
  auto [cfg, bricks] = testing::SmallModel();
  ASSERT_TRUE(OpenOrDie(path)->Import("m", cfg, bricks, Visibility::kShared, "test").ok());
  OpenOptions ro;
  ro.read_only = true;
  auto reg = OpenOrDie(path, ro);
  ASSERT_NE(reg, nullptr);
  auto m = reg->ResolveModel("m");
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->kind, ManifestKind::kModel);
  EXPECT_EQ(m->base, "");
  auto loaded = reg->LoadBricks(*m);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  auto st = reg->Import("other", cfg, bricks, Visibility::kShared, "test");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.status().code(), StatusCode::kIoError) << st.status().ToString();
  EXPECT_NE(st.status().message().find(path), std::string::npos) << st.status().message();
}

TEST_F(RegistryOpenTest, MissingFileWithoutCreateIsNotFoundNamingThePath) {
  OpenOptions opts;
  opts.create = false;
  auto r = Registry::Open(Path("nope.db"), opts);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find(Path("nope.db")), std::string::npos) << r.status().message();
  EXPECT_FALSE(std::filesystem::exists(Path("nope.db")));
}

TEST_F(RegistryOpenTest, SchemaNewerThanTheCodeIsUnsupported) {
  const std::string path = Path("r.db");
  ASSERT_NE(OpenOrDie(path), nullptr);
  RawDb(path).Exec("PRAGMA user_version = 7");
  auto r = Registry::Open(path);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnsupported);
  EXPECT_EQ(r.status().message(),
            "registry " + path + " has schema version 7, this brick understands up to 5; upgrade brick");
}

// Schema v1 had no blob_checksums table (v2) and no manifest kind, base or plugin scales (v3). A v1
// file (made here by undoing migrations 3 and 2 on a fresh one) is refused read-only, then migrated in
// place by a writable open: every stored payload gets its CRC-32C, the manifest becomes a model, and
// the model loads with the checksums checked.
TEST_F(RegistryOpenTest, Version1RegistryMigratesInPlaceWithChecksumsOfStoredBlobs) {
  const std::string path = Path("v1.db");
  auto [cfg, bricks] = testing::SmallModel();
  ASSERT_TRUE(OpenOrDie(path)->Import("m", cfg, bricks, Visibility::kShared, "").ok());
  int64_t n_blobs = 0;
  {
    RawDb raw(path);
    n_blobs = raw.Int("SELECT count(*) FROM blobs");
    raw.Exec(
        "ALTER TABLE manifest_bricks DROP COLUMN scale; ALTER TABLE manifests DROP COLUMN base; "
        "ALTER TABLE manifests DROP COLUMN kind; DROP TABLE blob_checksums; DROP TABLE profiles; DROP TABLE tokenizer_files; "
        "PRAGMA user_version = 1");
  }
  ASSERT_GT(n_blobs, 0);
  auto reg = ExpectMigratesToCurrent(path, 5);
  ASSERT_NE(reg, nullptr);
  EXPECT_EQ(RawDb(path).Int("SELECT count(*) FROM blob_checksums c JOIN blobs b ON b.id = c.blob_id"), n_blobs);
  auto m = reg->ResolveModel("m");
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->kind, ManifestKind::kModel);
  EXPECT_EQ(m->base, "");
  auto loaded = reg->LoadBricks(*m);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  testing::ExpectSameBricks(bricks, *loaded);
  // The backfilled values are the ones an import computes: importing again finds nothing to repair.
  auto again = reg->Import("m", cfg, bricks, Visibility::kShared, "");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->repaired_blobs, 0);
  EXPECT_EQ(again->new_blob_bytes, 0);
}

TEST_F(RegistryOpenTest, FileThatIsNotSqliteIsRejectedAndLeftAlone) {
  const std::string path = Path("notes.txt");
  const std::string text = "these are not the bricks you are looking for\n" + std::string(8192, 'x');
  testing::WriteBytes(path, text);
  auto r = Registry::Open(path);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().ToString();
  EXPECT_NE(r.status().message().find(path), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("not a brickrt registry"), std::string::npos) << r.status().message();
  EXPECT_EQ(testing::ReadBytes(path), text);
}

TEST_F(RegistryOpenTest, ForeignSqliteDatabaseIsNotARegistry) {
  const std::string path = Path("other.db");
  RawDb(path).Exec("CREATE TABLE songs (title TEXT)");
  auto r = Registry::Open(path);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(), path + " is a SQLite database but not a brickrt registry");
  EXPECT_EQ(RawDb(path).Int("SELECT count(*) FROM sqlite_master WHERE name = 'bricks'"), 0);
}

TEST_F(RegistryOpenTest, DirectoryIsNotARegistry) {
  auto r = Registry::Open(dir_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find(dir_), std::string::npos) << r.status().message();
}

TEST_F(RegistryOpenTest, ReadOnlyLocationIsAnIoErrorNamingThePath) {
  if (geteuid() == 0) {
    // Root ignores permission bits (CI runs as root); /proc refuses new files to everyone.
    const std::string path = "/proc/brickrt-registry-test.db";
    auto r = Registry::Open(path);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kIoError) << r.status().ToString();
    EXPECT_NE(r.status().message().find(path), std::string::npos) << r.status().message();
    return;
  }
  const std::string ro_dir = Path("ro");
  std::filesystem::create_directory(ro_dir);
  ASSERT_EQ(chmod(ro_dir.c_str(), 0555), 0);
  const std::string path = ro_dir + "/registry.db";
  auto r = Registry::Open(path);
  chmod(ro_dir.c_str(), 0755);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kIoError) << r.status().ToString();
  EXPECT_NE(r.status().message().find(path), std::string::npos) << r.status().message();
}

// Sets (or unsets, for nullopt) an environment variable for one scope.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, std::optional<std::string> value) : name_(name) {
    if (const char* old = getenv(name)) old_ = old;
    if (value) {
      setenv(name, value->c_str(), 1);
    } else {
      unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      setenv(name_, old_->c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

TEST(RegistryOpen, DefaultPathPrefersBrickRegistryThenXdgThenHome) {
  ScopedEnv home("HOME", "/home/u");
  {
    ScopedEnv reg("BRICK_REGISTRY", "/data/r.db");
    ScopedEnv xdg("XDG_DATA_HOME", "/xdg");
    EXPECT_EQ(Registry::DefaultPath(), "/data/r.db");
  }
  ScopedEnv reg("BRICK_REGISTRY", std::nullopt);
  {
    ScopedEnv xdg("XDG_DATA_HOME", "/xdg");
    EXPECT_EQ(Registry::DefaultPath(), "/xdg/brickrt/registry.db");
  }
  {
    ScopedEnv xdg("XDG_DATA_HOME", "relative/ignored");
    EXPECT_EQ(Registry::DefaultPath(), "/home/u/.local/share/brickrt/registry.db");
  }
  ScopedEnv xdg("XDG_DATA_HOME", std::nullopt);
  EXPECT_EQ(Registry::DefaultPath(), "/home/u/.local/share/brickrt/registry.db");
}

TEST(RegistryNames, VisibilityAndKindParseTheirOwnNames) {
  EXPECT_STREQ(VisibilityName(Visibility::kShared), "shared");
  EXPECT_STREQ(VisibilityName(Visibility::kPrivate), "private");
  EXPECT_EQ(ParseVisibility("private"), Visibility::kPrivate);
  EXPECT_EQ(ParseVisibility("shared"), Visibility::kShared);
  EXPECT_FALSE(ParseVisibility("Private"));
  EXPECT_FALSE(ParseVisibility(""));
  for (BrickKind k : {BrickKind::kEmbedding, BrickKind::kNorm, BrickKind::kAttnRouter, BrickKind::kAttnExpert,
                      BrickKind::kMlpRouter, BrickKind::kMlpExpert, BrickKind::kLmHead}) {
    EXPECT_EQ(ParseBrickKind(BrickKindName(k)), k);
  }
  EXPECT_FALSE(ParseBrickKind("expert"));
}

}  // namespace
}  // namespace brickrt
