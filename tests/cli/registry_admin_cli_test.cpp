// The registry administration subcommands end to end: verify (a flipped payload byte is listed and
// the exit is non-zero), export round trip and private refusal, rm refused while used then allowed,
// gc of orphaned blobs, set-visibility.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "brick_runner.h"
#include "core/json.h"

namespace brickrt {
namespace {

namespace fs = std::filesystem;

using testing::CmdResult;

class RegistryAdminCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("brick_regadmin_cli_" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    reg_ = (dir_ / "r.db").string();
    model_ = (dir_ / "m").string();
    // Per-layer expert counts differ, so export must rebuild ragged stacks.
    const CmdResult r =
        Brick("make-test-model " + model_ +
                  " --layers 3 --d-model 32 --attn-experts 4,2,3 --mlp-experts 5,3,4 --vocab 100 --dtype bf16",
              false);
    ASSERT_EQ(r.code, 0) << r.err;
    const CmdResult imp = Brick("import " + model_ + " --name tiny");
    ASSERT_EQ(imp.code, 0) << imp.err;
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Runs brick with --registry pointing at this test's registry (unless with_registry is false).
  CmdResult Brick(const std::string& args, bool with_registry = true) {
    return testing::RunBrick(args + (with_registry ? " --registry " + reg_ : ""), dir_ / "io");
  }

  std::string Digest(const std::string& brick) {
    const CmdResult r = Brick("show " + brick + " --json");
    EXPECT_EQ(r.code, 0) << r.err;
    auto j = ParseJson(r.out);
    return j.ok() ? j->Find("digest")->as_string() : "";
  }

  // Flips one payload byte of the blob with this digest behind the registry's back.
  void FlipBlobByte(const std::string& digest, int offset) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(reg_.c_str(), &db), SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT id FROM blobs WHERE digest = ?", -1, &st, nullptr), SQLITE_OK);
    sqlite3_bind_text(st, 1, digest.c_str(), -1, SQLITE_TRANSIENT);
    ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
    const sqlite3_int64 rowid = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_blob* b = nullptr;
    ASSERT_EQ(sqlite3_blob_open(db, "main", "blobs", "data", rowid, 1, &b), SQLITE_OK);
    unsigned char c = 0;
    ASSERT_EQ(sqlite3_blob_read(b, &c, 1, offset), SQLITE_OK);
    c ^= 0x5a;
    ASSERT_EQ(sqlite3_blob_write(b, &c, 1, offset), SQLITE_OK);
    sqlite3_blob_close(b);
    sqlite3_close(db);
  }

  int64_t BlobCount() {
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open(reg_.c_str(), &db), SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db, "SELECT count(*) FROM blobs", -1, &st, nullptr), SQLITE_OK);
    int64_t n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
  }

  fs::path dir_;
  std::string reg_, model_;
};

TEST_F(RegistryAdminCliTest, VerifyListsEveryDamagedBrickAndExitsNonZero) {
  CmdResult r = Brick("verify");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("all digests match"), std::string::npos) << r.out;

  FlipBlobByte(Digest("tiny/L1.mlp.E2"), 5);
  FlipBlobByte(Digest("tiny/L0.attn.router"), 0);
  r = Brick("verify");
  EXPECT_EQ(r.code, 1);
  std::istringstream lines(r.out);
  std::vector<std::string> bad;
  for (std::string line; std::getline(lines, line);) bad.push_back(line);
  ASSERT_EQ(bad.size(), 2u) << r.out;
  EXPECT_NE(bad[0].find("tiny/L0.attn.router@1"), std::string::npos) << bad[0];
  EXPECT_NE(bad[1].find("tiny/L1.mlp.E2@1"), std::string::npos) << bad[1];
  for (const std::string& l : bad) EXPECT_NE(l.find("brick import " + model_ + " --name tiny"), std::string::npos) << l;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find("2 of"), std::string::npos) << r.err;

  // One model, one brick, and JSON.
  EXPECT_EQ(Brick("verify tiny").code, 1);
  EXPECT_EQ(Brick("verify tiny/L1.mlp.E1").code, 0);
  EXPECT_EQ(Brick("verify tiny/L1.mlp.E2@1").code, 1);
  r = Brick("verify tiny --json");
  EXPECT_EQ(r.code, 1);
  auto j = ParseJson(r.out);
  ASSERT_TRUE(j.ok()) << r.out;
  int n_bad = 0;
  for (const JsonValue& o : j->as_array()) {
    const bool ok = o.Find("ok")->as_bool();
    n_bad += !ok;
    EXPECT_EQ(o.Find("error")->is_null(), ok);
    EXPECT_TRUE(o.Find("version")->as_int64());
  }
  EXPECT_EQ(n_bad, 2);

  // The fix works: re-importing repairs the payloads.
  ASSERT_EQ(Brick("import " + model_ + " --name tiny").code, 0);
  EXPECT_EQ(Brick("verify").code, 0);
  EXPECT_NE(Brick("verify nosuch").code, 0);
}

// Tokenizer files are checked too: a damaged one is a BAD line naming the model's tokenizer and the file.
TEST_F(RegistryAdminCliTest, VerifyChecksTokenizerFiles) {
  const std::string tokenizer = std::string(BRICK_SOURCE_DIR) + "/tests/reference/tokenizer";
  const std::string dir = (dir_ / "withtok").string();
  ASSERT_EQ(Brick("make-test-model " + dir + " --layers 1 --d-model 32 --vocab 50295 --tokenizer " + tokenizer, false)
                .code,
            0);
  ASSERT_EQ(Brick("import " + dir + " --name withtok").code, 0);
  CmdResult r = Brick("verify");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("and 1 tokenizers: all digests match"), std::string::npos) << r.out;

  const CmdResult models = Brick("models --json");
  auto j = ParseJson(models.out);
  ASSERT_TRUE(j.ok()) << models.out;
  ASSERT_EQ(j->as_array().size(), 2u);
  // The stored vocab.json blob, by the digest its tokenizer_files row names.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(reg_.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT digest FROM tokenizer_files WHERE name = 'vocab.json'", -1, &st, nullptr),
            SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  const std::string digest = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
  sqlite3_finalize(st);
  sqlite3_close(db);
  FlipBlobByte(digest, 10);
  r = Brick("verify withtok");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("BAD tokenizer of withtok@1: "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("vocab.json"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("1 of 1 tokenizers are damaged"), std::string::npos) << r.err;
  EXPECT_EQ(Brick("verify tiny").code, 0) << "another model's bricks and tokenizer are fine";
}

TEST_F(RegistryAdminCliTest, ExportRoundTripsAndRefusesPrivateBricks) {
  const std::string out = (dir_ / "exported").string();
  CmdResult r = Brick("export tiny@1 --out " + out + " --shard-bytes 20000");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(fs::exists(out + "/model.safetensors.index.json"));
  // The exported checkpoint runs like the original.
  const std::string gen = " --tokens 11,42,7 -n 6 --temp 0 --ignore-eos --json";
  const CmdResult a = Brick("run --checkpoint " + model_ + gen, false);
  const CmdResult b = Brick("run --checkpoint " + out + gen, false);
  ASSERT_EQ(a.code, 0) << a.err;
  ASSERT_EQ(b.code, 0) << b.err;
  EXPECT_EQ(DumpJson(*ParseJson(a.out)->Find("generated")), DumpJson(*ParseJson(b.out)->Find("generated")));

  ASSERT_EQ(Brick("set-visibility tiny/L2.mlp.E3 private").code, 0);
  r = Brick("export tiny --out " + (dir_ / "priv").string());
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find("tiny/L2.mlp.E3@1"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--allow-private"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir_ / "priv"));
  r = Brick("export tiny --allow-private --out " + (dir_ / "priv").string());
  EXPECT_EQ(r.code, 0) << r.err;
  // Usage errors.
  EXPECT_EQ(Brick("export tiny").code, 2);
  EXPECT_EQ(Brick("export tiny --out " + out).code, 1);  // not empty
}

TEST_F(RegistryAdminCliTest, RmIsRefusedWhileUsedThenAllowedAndGcDropsTheBlob) {
  CmdResult r = Brick("rm tiny/L0.mlp.E1@1");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find("tiny@1"), std::string::npos) << r.err;
  EXPECT_EQ(Brick("show tiny/L0.mlp.E1@1").code, 0);

  ASSERT_EQ(Brick("tag tiny@1 stable").code, 0);
  r = Brick("rm tiny@1");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("removed tag tiny:stable"), std::string::npos) << r.out;
  EXPECT_NE(Brick("run tiny:stable --tokens 1").code, 0);

  const int64_t blobs = BlobCount();
  r = Brick("rm tiny/L0.mlp.E1@1 --json");
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = ParseJson(r.out);
  ASSERT_TRUE(j.ok()) << r.out;
  EXPECT_EQ(j->Find("bricks")->as_array().size(), 1u);
  EXPECT_EQ(BlobCount(), blobs) << "rm keeps payloads; gc drops them";
  r = Brick("gc --json");
  ASSERT_EQ(r.code, 0) << r.err;
  j = ParseJson(r.out);
  ASSERT_TRUE(j.ok()) << r.out;
  EXPECT_EQ(*j->Find("blobs")->as_int64(), 1);
  EXPECT_GT(*j->Find("bytes")->as_int64(), 0);
  EXPECT_EQ(BlobCount(), blobs - 1);
  r = Brick("gc --vacuum");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("dropped 0"), std::string::npos) << r.out;
  EXPECT_EQ(Brick("verify").code, 0);

  // --force takes the manifests with it.
  ASSERT_EQ(Brick("import " + model_ + " --name other").code, 0);
  r = Brick("rm other/embed --force");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("removed model other@1"), std::string::npos) << r.out;
  EXPECT_NE(Brick("run other --tokens 1").code, 0);
  EXPECT_EQ(Brick("rm tiny").code, 1);  // a model needs its version
}

TEST_F(RegistryAdminCliTest, SetVisibilityRoundTrips) {
  CmdResult r = Brick("set-visibility tiny private");
  ASSERT_EQ(r.code, 0) << r.err;
  auto visibilities = [&] {
    const CmdResult ls = Brick("ls --json");
    EXPECT_EQ(ls.code, 0) << ls.err;
    auto j = ParseJson(ls.out);
    std::set<std::string> out;
    if (j.ok())
      for (const JsonValue& o : j->as_array()) out.insert(o.Find("visibility")->as_string());
    return out;
  };
  EXPECT_EQ(visibilities(), std::set<std::string>{"private"});
  ASSERT_EQ(Brick("set-visibility tiny@1 shared").code, 0);
  EXPECT_EQ(visibilities(), std::set<std::string>{"shared"});
  ASSERT_EQ(Brick("set-visibility tiny/L1.attn.E0 private").code, 0);
  EXPECT_EQ(visibilities(), (std::set<std::string>{"private", "shared"}));
  EXPECT_EQ(Brick("set-visibility tiny secret").code, 2);
  EXPECT_EQ(Brick("set-visibility nosuch private").code, 1);
}

}  // namespace
}  // namespace brickrt
