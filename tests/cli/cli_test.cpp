// The brick binary end to end: help, make-test-model -> run, --json, --dump-logits against the
// NumPy golden logits, and one clear stderr line + non-zero exit for each kind of bad input.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/json.h"
#include "brick_runner.h"
#include "core/npy.h"

namespace brickrt {
namespace {

namespace fs = std::filesystem;

using testing::CmdResult;

CmdResult Brick(const std::string& args) {
  return testing::RunBrick(args, fs::temp_directory_path() / ("brick_cli_" + std::to_string(getpid())));
}

class CliTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fs::path(fs::temp_directory_path() / ("brick_cli_model_" + std::to_string(getpid())));
    fs::remove_all(*dir_);
    const CmdResult r = Brick("make-test-model " + dir_->string() +
                        " --layers 2 --d-model 64 --attn-experts 4,3 --mlp-experts 8 --vocab 300 --dtype bf16");
    ASSERT_EQ(r.code, 0) << r.err;
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete dir_;
  }
  static std::string Model() { return dir_->string(); }
  static fs::path* dir_;
};
fs::path* CliTest::dir_ = nullptr;

int CountLines(const std::string& s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

TEST(Cli, HelpForEveryCommand) {
  for (const char* c : {"--help", "run --help", "make-test-model --help"}) {
    const CmdResult r = Brick(c);
    EXPECT_EQ(r.code, 0) << c;
    EXPECT_NE(r.out.find("usage: brick"), std::string::npos) << c;
  }
  EXPECT_NE(Brick("run --help").out.find("--dump-logits"), std::string::npos);
  EXPECT_EQ(Brick("frobnicate").code, 2);
}

TEST_F(CliTest, JsonOutputHasTheDocumentedFields) {
  const CmdResult r = Brick("run --checkpoint " + Model() + " --tokens 11,42,7 -n 8 --temp 0 --json --ignore-eos");
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = ParseJson(r.out);
  ASSERT_TRUE(j.ok()) << j.status().ToString() << "\n" << r.out;
  EXPECT_EQ(*j->Find("prompt_tokens")->as_int64(), 3);
  EXPECT_EQ(j->Find("generated")->as_array().size(), 8u);
  EXPECT_GT(j->Find("prefill_tokens_per_s")->as_double(), 0.0);
  EXPECT_GT(j->Find("decode_tokens_per_s")->as_double(), 0.0);
}

TEST_F(CliTest, GreedyIsDeterministicAndSeededSamplingIsReproducible) {
  const std::string base = "run --checkpoint " + Model() + " --tokens 11,42,7 -n 12 --ignore-eos --json";
  auto gen = [](const CmdResult& r) {
    const auto j = ParseJson(r.out);
    EXPECT_TRUE(j.ok()) << r.err;
    return j.ok() ? DumpJson(*j->Find("generated")) : std::string();
  };
  EXPECT_EQ(gen(Brick(base + " --temp 0")), gen(Brick(base + " --temp 0 --threads 1")));
  EXPECT_EQ(gen(Brick(base + " --temp 0.8 --top-p 0.9 --seed 1")), gen(Brick(base + " --temp 0.8 --top-p 0.9 --seed 1")));
  EXPECT_NE(gen(Brick(base + " --temp 5 --seed 1")), gen(Brick(base + " --temp 5 --seed 2")));
}

TEST(Cli, DumpLogitsMatchesTheNumPyReference) {
  const std::string ref = std::string(BRICK_SOURCE_DIR) + "/tests/reference/data/f32";
  std::stringstream prompts;
  prompts << std::ifstream(ref + "/prompts.json").rdbuf();
  const auto parsed = ParseJson(prompts.str());
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  const JsonValue& p0 = parsed->Find("prompts")->as_array()[0];
  std::string ids;
  for (const JsonValue& v : p0.as_array()) ids += (ids.empty() ? "" : ",") + std::to_string(*v.as_int64());
  const std::string out = (fs::temp_directory_path() / ("brick_cli_logits_" + std::to_string(getpid()) + ".npy")).string();
  const CmdResult r = Brick("run --checkpoint " + ref + " --tokens " + ids + " -n 0 --dump-logits " + out);
  ASSERT_EQ(r.code, 0) << r.err;
  auto mine = ReadNpyF32(out), golden = ReadNpyF32(ref + "/logits_0.npy");
  ASSERT_TRUE(mine.ok() && golden.ok());
  ASSERT_EQ(mine->first, golden->first);
  float max_diff = 0;
  for (size_t i = 0; i < mine->second.size(); ++i) max_diff = std::max(max_diff, std::fabs(mine->second[i] - golden->second[i]));
  EXPECT_LE(max_diff, 1e-3f);
  fs::remove(out);
}

// Each bad input: a non-zero exit and exactly one line on stderr that names the problem.
void ExpectOneLineError(const CmdResult& r, int code, const std::string& needle) {
  EXPECT_EQ(r.code, code) << r.err;
  EXPECT_EQ(CountLines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
}

TEST_F(CliTest, BadInputGetsOneClearLine) {
  ExpectOneLineError(Brick("run --checkpoint /nonexistent/ckpt --tokens 1"), 1, "/nonexistent/ckpt");
  ExpectOneLineError(Brick("run --checkpoint " + Model() + " --tokens 1,300"), 1, "300");
  ExpectOneLineError(Brick("run --checkpoint " + Model() + " --tokens 1,x"), 2, "'x'");
  ExpectOneLineError(Brick("run --checkpoint " + Model() + " --tokens 1 --temp -1"), 2, "temperature");
  ExpectOneLineError(Brick("run --checkpoint " + Model() + " --tokens 1 --bogus"), 2, "--bogus");
  ExpectOneLineError(Brick("run --tokens 1"), 2, "--checkpoint");
  ExpectOneLineError(Brick("make-test-model /tmp/x --attn-experts 4,4 --layers 3"), 2, "3 layers");
  // Sizes that would overflow or exhaust memory are refused up front, never a crash.
  ExpectOneLineError(Brick("run --checkpoint " + Model() + " --tokens 1,2,3 -n 288230376151711742"), 2, "-n");
  ExpectOneLineError(Brick("make-test-model /tmp/x --d-model 100000000"), 2, "--d-model");
  ExpectOneLineError(Brick("make-test-model /tmp/x --k-att 4294967298"), 2, "--k-att");
  ExpectOneLineError(Brick("make-test-model /tmp/x --layers 4096 --d-model 65536 --ffd-hidden 262144"), 2, "MiB");
}

TEST_F(CliTest, TruncatedCheckpointIsAnErrorNotACrash) {
  const fs::path broken = fs::temp_directory_path() / ("brick_cli_broken_" + std::to_string(getpid()));
  fs::remove_all(broken);
  fs::copy(*dir_, broken);
  fs::resize_file(broken / "model.safetensors", fs::file_size(broken / "model.safetensors") / 2);
  ExpectOneLineError(Brick("run --checkpoint " + broken.string() + " --tokens 1"), 1, "model.safetensors");
  fs::remove_all(broken);
}

}  // namespace
}  // namespace brickrt
