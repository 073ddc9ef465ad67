// The registry subcommands end to end: import -> ls/show/models/tag -> run MODEL_REF, dedup on
// re-import, and one clear line for each bad reference or registry path.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "brick_runner.h"
#include "core/json.h"

namespace brickrt {
namespace {

namespace fs = std::filesystem;

using testing::CmdResult;

class RegistryCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("brick_reg_cli_" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    reg_ = (dir_ / "r.db").string();
    const CmdResult r = Brick("make-test-model " + (dir_ / "m").string() +
                              " --layers 2 --d-model 64 --attn-experts 4 --mlp-experts 6 --vocab 300 --dtype bf16", false);
    ASSERT_EQ(r.code, 0) << r.err;
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Runs brick with --registry pointing at this test's registry (unless with_registry is false).
  CmdResult Brick(const std::string& args, bool with_registry = true) {
    return testing::RunBrick(args + (with_registry ? " --registry " + reg_ : ""), dir_ / "io");
  }

  fs::path dir_;
  std::string reg_;
};

TEST_F(RegistryCliTest, ImportListTagRun) {
  CmdResult r = Brick("import " + (dir_ / "m").string() + " --name tiny --json");
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = ParseJson(r.out);
  ASSERT_TRUE(j.ok()) << r.out;
  EXPECT_EQ(j->Find("manifest")->as_string(), "tiny@1");
  // embed, ln_f, lm_head + per layer: 2 norms, 2 routers, 4 + 6 experts
  EXPECT_EQ(*j->Find("new_bricks")->as_int64(), 3 + 2 * (4 + 10));

  r = Brick("ls --json --kind mlp_expert --name 'tiny/L1.*'");
  ASSERT_EQ(r.code, 0) << r.err;
  auto ls = ParseJson(r.out);
  ASSERT_TRUE(ls.ok()) << r.out;
  ASSERT_EQ(ls->as_array().size(), 6u);
  const JsonValue& first = ls->as_array()[0];
  for (const char* key : {"name", "version", "kind", "layer", "digest", "bytes", "visibility"})
    EXPECT_NE(first.Find(key), nullptr) << key;
  EXPECT_EQ(first.Find("digest")->as_string().size(), 64u);
  EXPECT_EQ(first.Find("visibility")->as_string(), "shared");

  r = Brick("show tiny/L0.attn.E2 --json");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("\"wq\""), std::string::npos) << r.out;

  ASSERT_EQ(Brick("tag tiny@1 stable").code, 0);
  r = Brick("models --json");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("\"stable\""), std::string::npos) << r.out;

  // Running from the registry gives the same tokens as running the checkpoint directory.
  const std::string gen = " --tokens 11,42,7 -n 8 --temp 0 --ignore-eos --json";
  const CmdResult from_reg = Brick("run tiny:stable" + gen);
  const CmdResult from_dir = Brick("run --checkpoint " + (dir_ / "m").string() + gen, false);
  ASSERT_EQ(from_reg.code, 0) << from_reg.err;
  ASSERT_EQ(from_dir.code, 0) << from_dir.err;
  auto a = ParseJson(from_reg.out), b = ParseJson(from_dir.out);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(DumpJson(*a->Find("generated")), DumpJson(*b->Find("generated")));
  EXPECT_EQ(a->Find("manifest")->as_string(), "tiny@1");
}

TEST_F(RegistryCliTest, ReimportingIdenticalWeightsAddsNothing) {
  ASSERT_EQ(Brick("import " + (dir_ / "m").string() + " --name tiny").code, 0);
  const auto size = fs::file_size(reg_);
  CmdResult r = Brick("import " + (dir_ / "m").string() + " --name tiny --json");
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = ParseJson(r.out);
  ASSERT_TRUE(j.ok());
  EXPECT_EQ(j->Find("new_manifest")->as_bool(), false);
  EXPECT_EQ(*j->Find("new_bricks")->as_int64(), 0);
  EXPECT_EQ(*j->Find("new_blob_bytes")->as_int64(), 0);
  EXPECT_EQ(j->Find("manifest")->as_string(), "tiny@1");
  EXPECT_LE(fs::file_size(reg_), size + (1 << 20));  // metadata (an event) at most
}

TEST_F(RegistryCliTest, BadReferencesAndPathsGetOneLine) {
  ASSERT_EQ(Brick("import " + (dir_ / "m").string() + " --name tiny").code, 0);
  auto one_line = [](const CmdResult& r, const std::string& needle) {
    EXPECT_NE(r.code, 0);
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
  };
  one_line(Brick("run nosuch:stable --tokens 1"), "nosuch");
  one_line(Brick("run tiny@7 --tokens 1"), "tiny@7");
  one_line(Brick("show tiny/L9.mlp.E0"), "tiny/L9.mlp.E0");
  one_line(Brick("import /nonexistent/dir --name x"), "/nonexistent/dir");
  one_line(Brick("import " + (dir_ / "m").string() + " --name 'a/b'"), "--name");
  // A read-only command on a registry that does not exist does not create one.
  const std::string missing = (dir_ / "missing.db").string();
  one_line(Brick("ls --registry " + missing, false), missing);
  EXPECT_FALSE(fs::exists(missing));
  // A file that is not a registry.
  const std::string junk = (dir_ / "junk.db").string();
  std::ofstream(junk) << "this is not a database";
  one_line(Brick("ls --registry " + junk, false), junk);
}

}  // namespace
}  // namespace brickrt
