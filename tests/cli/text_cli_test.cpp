// Text in, text out (issue #7): `brick run --prompt TEXT --tokenizer PATH` encodes the prompt with the
// tokenizer (the same ids `brick tokenize` gives), streams the generated text (exactly the --json
// "text", which decodes the generated ids), and --prompt without a tokenizer is one usage line.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "brick_runner.h"
#include "core/json.h"

namespace brickrt {
namespace {

namespace fs = std::filesystem;
using testing::CmdResult;

class TextCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    // GPT-2's vocabulary: the model needs room for its 50257 ids.
    ASSERT_EQ(Brick("make-test-model " + (dir_ / "m").string() + " --layers 2 --d-model 64 --vocab 50295").code, 0);
  }
  void TearDown() override { fs::remove_all(dir_); }
  CmdResult Brick(const std::string& args) { return testing::RunBrick(args, dir_ / "io"); }

  fs::path dir_ = fs::temp_directory_path() / ("brick_text_cli_" + std::to_string(getpid()));
  const std::string tokenizer_ = std::string(BRICK_SOURCE_DIR) + "/tests/reference/tokenizer";
};

TEST_F(TextCliTest, PromptIsEncodedAndTheTextStreamsAsJsonSaysIt) {
  const std::string run = "run --checkpoint " + (dir_ / "m").string() + " --tokenizer " + tokenizer_ +
                          " --prompt 'def fibonacci(n):' -n 12 --temp 0 --ignore-eos";
  const CmdResult json = Brick(run + " --json");
  ASSERT_EQ(json.code, 0) << json.err;
  auto j = ParseJson(json.out);
  ASSERT_TRUE(j.ok()) << json.out;
  EXPECT_EQ(j->Find("prompt_text")->as_string(), "def fibonacci(n):");
  const CmdResult ids = Brick("tokenize --tokenizer " + tokenizer_ + " --text 'def fibonacci(n):' --json");
  ASSERT_EQ(ids.code, 0) << ids.err;
  auto t = ParseJson(ids.out);
  ASSERT_TRUE(t.ok()) << ids.out;
  EXPECT_EQ(DumpJson(*j->Find("prompt")), DumpJson(*t->Find("ids")));
  EXPECT_EQ(j->Find("generated")->as_array().size(), 12u);
  const std::string text = j->Find("text")->as_string();
  EXPECT_FALSE(text.empty());

  const CmdResult streamed = Brick(run);
  ASSERT_EQ(streamed.code, 0) << streamed.err;
  EXPECT_EQ(streamed.out, text + "\n") << "the streamed text is the decoded generation";

  // The generated ids decode to that text.
  std::string list;
  for (const JsonValue& id : j->Find("generated")->as_array()) list += (list.empty() ? "" : ",") + DumpJson(id);
  const CmdResult decoded = Brick("tokenize --tokenizer " + tokenizer_ + " --decode " + list);
  ASSERT_EQ(decoded.code, 0) << decoded.err;
  EXPECT_NE(decoded.out.find(text), std::string::npos) << decoded.out;
}

TEST_F(TextCliTest, SeveralPromptsAndUsageErrors) {
  const std::string model = "run --checkpoint " + (dir_ / "m").string();
  const CmdResult two = Brick(model + " --tokenizer " + tokenizer_ + " --prompt 'héllo' --prompt '日本' -n 3 --temp 0");
  ASSERT_EQ(two.code, 0) << two.err;
  EXPECT_EQ(two.out.rfind("[0] ", 0), 0u) << two.out;
  EXPECT_NE(two.out.find("\n[1] "), std::string::npos) << two.out;

  const CmdResult no_tokenizer = Brick(model + " --prompt 'x' -n 2");
  EXPECT_EQ(no_tokenizer.code, 2);
  EXPECT_NE(no_tokenizer.err.find("--prompt needs a tokenizer"), std::string::npos) << no_tokenizer.err;
  EXPECT_EQ(no_tokenizer.err.find('\n'), no_tokenizer.err.size() - 1) << no_tokenizer.err;
  const CmdResult both = Brick(model + " --tokenizer " + tokenizer_ + " --prompt x --tokens 1,2");
  EXPECT_EQ(both.code, 2);
  EXPECT_NE(both.err.find("one of them"), std::string::npos) << both.err;
  const CmdResult missing = Brick(model + " --tokenizer " + (dir_ / "nope").string() + " --prompt x");
  EXPECT_EQ(missing.code, 2);
}

// --trace lines carry each token and its text piece: the layer-0 lines of the prompt spell the prompt.
TEST_F(TextCliTest, TraceLinesCarryTheTokenAndItsPiece) {
  const fs::path trace = dir_ / "trace.jsonl";
  const CmdResult run = Brick("run --checkpoint " + (dir_ / "m").string() + " --tokenizer " + tokenizer_ +
                              " --prompt 'naïve café' -n 3 --temp 0 --trace " + trace.string());
  ASSERT_EQ(run.code, 0) << run.err;
  const CmdResult ids = Brick("tokenize --tokenizer " + tokenizer_ + " --text 'naïve café' --json");
  ASSERT_EQ(ids.code, 0) << ids.err;
  auto t = ParseJson(ids.out);
  ASSERT_TRUE(t.ok()) << ids.out;
  const int64_t n_prompt = static_cast<int64_t>(t->Find("ids")->as_array().size());
  std::ifstream in(trace);
  std::string prompt_text;
  int lines = 0;
  for (std::string line; std::getline(in, line); ++lines) {
    auto j = ParseJson(line);
    ASSERT_TRUE(j.ok()) << line;
    ASSERT_NE(j->Find("token"), nullptr) << line;
    ASSERT_NE(j->Find("piece"), nullptr) << line;
    if (*j->Find("layer")->as_int64() == 0 && *j->Find("pos")->as_int64() < n_prompt) prompt_text += j->Find("piece")->as_string();
  }
  EXPECT_EQ(lines, 2 * (n_prompt + 2)) << "2 layers x (prompt tokens + 2 decode steps)";
  EXPECT_EQ(prompt_text, "naïve café");
}

// brick chat keeps the conversation in the KV cache: turn 2's tokens are what brick run generates
// from the whole history (turn 1's prompt and answer, then turn 2's prompt).
TEST_F(TextCliTest, ChatContinuesTheConversationItHolds) {
  std::ofstream(dir_ / "turns.txt") << "hello there\nwhat is 2+2?\n";
  const CmdResult chat = Brick("chat --checkpoint " + (dir_ / "m").string() + " --tokenizer " + tokenizer_ +
                               " -n 6 --temp 0 --json < " + (dir_ / "turns.txt").string());
  ASSERT_EQ(chat.code, 0) << chat.err;
  std::istringstream lines(chat.out);
  std::vector<JsonValue> turns;
  for (std::string line; std::getline(lines, line);) {
    auto j = ParseJson(line);
    ASSERT_TRUE(j.ok()) << line;
    turns.push_back(*j);
  }
  ASSERT_EQ(turns.size(), 2u);
  std::string history;
  for (const JsonValue& t : turns) {
    EXPECT_EQ(t.Find("generated")->as_array().size(), 6u);
  }
  for (const char* field : {"prompt", "generated"}) {
    for (const JsonValue& id : turns[0].Find(field)->as_array()) history += (history.empty() ? "" : ",") + DumpJson(id);
  }
  for (const JsonValue& id : turns[1].Find("prompt")->as_array()) history += "," + DumpJson(id);
  const CmdResult run = Brick("run --checkpoint " + (dir_ / "m").string() + " --tokens " + history +
                              " -n 6 --temp 0 --ignore-eos --json");
  ASSERT_EQ(run.code, 0) << run.err;
  auto j = ParseJson(run.out);
  ASSERT_TRUE(j.ok()) << run.out;
  EXPECT_EQ(DumpJson(*j->Find("generated")), DumpJson(*turns[1].Find("generated")));

  const CmdResult no_tokenizer = Brick("chat --checkpoint " + (dir_ / "m").string() + " < /dev/null");
  EXPECT_EQ(no_tokenizer.code, 2);
  EXPECT_NE(no_tokenizer.err.find("has no tokenizer"), std::string::npos) << no_tokenizer.err;
  EXPECT_EQ(no_tokenizer.err.find('\n'), no_tokenizer.err.size() - 1) << no_tokenizer.err;

  // A checkpoint that carries its tokenizer chats without --tokenizer, with the same tokens.
  ASSERT_EQ(Brick("make-test-model " + (dir_ / "mt").string() + " --layers 2 --d-model 64 --vocab 50295 --tokenizer " +
                  tokenizer_).code,
            0);
  const CmdResult with = Brick("chat --checkpoint " + (dir_ / "mt").string() + " --tokenizer " + tokenizer_ +
                               " -n 4 --temp 0 --json < " + (dir_ / "turns.txt").string());
  const CmdResult own = Brick("chat --checkpoint " + (dir_ / "mt").string() + " -n 4 --temp 0 --json < " +
                              (dir_ / "turns.txt").string());
  ASSERT_EQ(own.code, 0) << own.err;
  EXPECT_EQ(own.out, with.out);
}

}  // namespace
}  // namespace brickrt
