// A tokenizer is part of the manifest (issue #7), through the CLI: `brick import` stores a checkpoint's
// tokenizer files; `brick tokenize MODEL` = `brick tokenize --tokenizer PATH`; `brick run MODEL
// --prompt` needs no --tokenizer and equals the --tokenizer run; `brick eval` on a .txt equals eval on
// the same text's ids; `brick export` writes the files back; a broken tokenizer file is one line and
// imports nothing; a model without a tokenizer is a clear error.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "brick_runner.h"
#include "core/json.h"

namespace brickrt {
namespace {

namespace fs = std::filesystem;
using testing::CmdResult;

class TokenizerCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    reg_ = (dir_ / "r.db").string();
    setenv("BRICK_REGISTRY", reg_.c_str(), 1);  // every command (make-test-model has no --registry)
    ASSERT_EQ(Brick("make-test-model " + Dir("m") + " --layers 2 --d-model 64 --attn-experts 2 --mlp-experts 2 " +
                    "--vocab 50295 --tokenizer " + tokenizer_).code, 0);
    ASSERT_TRUE(fs::exists(Dir("m") + "/vocab.json") && fs::exists(Dir("m") + "/merges.txt"));
  }
  void TearDown() override { fs::remove_all(dir_); }
  CmdResult Brick(const std::string& args) { return testing::RunBrick(args, dir_ / "io"); }
  std::string Dir(const std::string& name) const { return (dir_ / name).string(); }
  std::string Write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name) << text;
    return Dir(name);
  }
  static void ExpectOneLineError(const CmdResult& r, const std::string& what) {
    EXPECT_NE(r.code, 0);
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_NE(r.err.find(what), std::string::npos) << r.err;
  }

  fs::path dir_ = fs::temp_directory_path() / ("brick_tokenizer_cli_" + std::to_string(getpid()));
  std::string reg_;
  const std::string tokenizer_ = std::string(BRICK_SOURCE_DIR) + "/tests/reference/tokenizer";
};

TEST_F(TokenizerCliTest, ImportedModelCarriesItsTokenizer) {
  const CmdResult imp = Brick("import " + Dir("m") + " --name m --json");
  ASSERT_EQ(imp.code, 0) << imp.err;
  EXPECT_NE(imp.out.find("\"tokenizer\":true"), std::string::npos) << imp.out;
  const CmdResult models = Brick("models --json");
  ASSERT_EQ(models.code, 0) << models.err;
  EXPECT_NE(models.out.find("\"tokenizer\":[\"merges.txt\",\"vocab.json\"]"), std::string::npos) << models.out;

  const std::string text = "'def f(x):\\n    return x  # ünïcode'";
  const CmdResult by_model = Brick("tokenize m --text " + text + " --json");
  const CmdResult by_path = Brick("tokenize --tokenizer " + tokenizer_ + " --text " + text + " --json");
  ASSERT_EQ(by_model.code, 0) << by_model.err;
  ASSERT_EQ(by_path.code, 0) << by_path.err;
  EXPECT_EQ(by_model.out, by_path.out);

  const std::string run = " --prompt 'def fibonacci(n):' -n 8 --temp 0 --ignore-eos --json";
  const CmdResult own = Brick("run m" + run);
  const CmdResult given = Brick("run m --tokenizer " + tokenizer_ + run);
  ASSERT_EQ(own.code, 0) << own.err;
  ASSERT_EQ(given.code, 0) << given.err;
  auto a = ParseJson(own.out), b = ParseJson(given.out);
  ASSERT_TRUE(a.ok() && b.ok()) << own.out;
  EXPECT_EQ(DumpJson(*a->Find("prompt")), DumpJson(*b->Find("prompt")));
  EXPECT_EQ(DumpJson(*a->Find("generated")), DumpJson(*b->Find("generated")));
  EXPECT_EQ(a->Find("text")->as_string(), b->Find("text")->as_string());

  // Exported next to config.json, byte for byte.
  ASSERT_EQ(Brick("export m --out " + Dir("out")).code, 0);
  for (const char* f : {"vocab.json", "merges.txt"}) {
    std::ifstream x(Dir("out") + "/" + f), y(tokenizer_ + "/" + f);
    std::stringstream sx, sy;
    sx << x.rdbuf();
    sy << y.rdbuf();
    EXPECT_EQ(sx.str(), sy.str()) << f;
  }
}

TEST_F(TokenizerCliTest, EvalOnTextEqualsEvalOnItsIds) {
  ASSERT_EQ(Brick("import " + Dir("m") + " --name m").code, 0);
  const std::string text = "def add(a, b):\n    return a + b\n\nprint(add(1, 2))\n";
  const std::string txt = Write("code.txt", text);
  const CmdResult ids = Brick("tokenize m --text \"$(cat " + txt + "; printf x)\"");
  ASSERT_EQ(ids.code, 0) << ids.err;
  // The shell strips trailing newlines from $(...): the x kept them, now drop its id (the last one).
  std::string line = ids.out.substr(0, ids.out.find('\n'));
  line = line.substr(0, line.rfind(' '));
  const std::string ids_file = Write("code.ids", line + "\n");
  const CmdResult on_text = Brick("eval m --data " + txt + " --context 8 --json");
  const CmdResult on_ids = Brick("eval m --data " + ids_file + " --context 8 --json");
  ASSERT_EQ(on_text.code, 0) << on_text.err;
  ASSERT_EQ(on_ids.code, 0) << on_ids.err;
  auto a = ParseJson(on_text.out), b = ParseJson(on_ids.out);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(DumpJson(*a->Find("tokens")), DumpJson(*b->Find("tokens")));
  EXPECT_EQ(DumpJson(*a->Find("nll")), DumpJson(*b->Find("nll")));
}

TEST_F(TokenizerCliTest, BrokenTokenizerFileIsOneLineAndImportsNothing) {
  Write("m/vocab.json", "{\"a\": ");
  const CmdResult imp = Brick("import " + Dir("m") + " --name m");
  ExpectOneLineError(imp, Dir("m") + "/vocab.json");
  const CmdResult models = Brick("models --json");
  ASSERT_EQ(models.code, 0) << models.err;
  EXPECT_EQ(models.out, "[]\n");
  // A tokenizer larger than the model's vocabulary is refused too.
  ASSERT_EQ(Brick("make-test-model " + Dir("small") + " --layers 1 --d-model 32 --vocab 1000").code, 0);
  ExpectOneLineError(Brick("import " + Dir("small") + " --name s --tokenizer " + tokenizer_),
                     "more than the model's vocab_size 1000");
}

TEST_F(TokenizerCliTest, ModelWithoutTokenizerIsAClearError) {
  ASSERT_EQ(Brick("make-test-model " + Dir("bare") + " --layers 1 --d-model 32 --vocab 1000").code, 0);
  ASSERT_EQ(Brick("import " + Dir("bare") + " --name bare").code, 0);
  const CmdResult run = Brick("run bare --prompt hello -n 2");
  EXPECT_EQ(run.code, 2);
  ExpectOneLineError(run, "--prompt needs a tokenizer, and model bare@1 has none");
  ExpectOneLineError(Brick("tokenize bare --text hello"), "model bare@1 has no tokenizer");
  ExpectOneLineError(Brick("eval bare --data " + Write("t.txt", "hello world")), "needs a tokenizer");
  EXPECT_EQ(Brick("run bare --tokens 1,2,3 -n 2").code, 0);
}

}  // namespace
}  // namespace brickrt
