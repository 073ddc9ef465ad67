// brick eval / profile / prune end to end: eval against NLLs computed here from `brick run
// --dump-logits`, a stored profile used by prune and by a spec, the heatmap file, and one clear line
// (exit 1, or 2 for usage) for each bad input.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "brick_runner.h"
#include "core/json.h"
#include "core/npy.h"

namespace brickrt {
namespace {

namespace fs = std::filesystem;

using testing::CmdResult;

class MeasureCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("brick_measure_cli_" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    reg_ = (dir_ / "r.db").string();
    for (const auto& [name, seed] : {std::pair<std::string, int>{"m", 1}, {"o", 2}}) {
      CmdResult r = Brick("make-test-model " + Path(name) +
                              " --layers 3 --d-model 64 --attn-experts 4 --mlp-experts 6 --vocab 300 --dtype f32 "
                              "--seed " + std::to_string(seed),
                          false);
      ASSERT_EQ(r.code, 0) << r.err;
      r = Brick("import " + Path(name) + " --name " + name);
      ASSERT_EQ(r.code, 0) << r.err;
    }
    std::ostringstream ids;
    uint32_t x = 11;
    for (int i = 0; i < 300; ++i) {
      ids_.push_back(static_cast<int32_t>(((x = x * 1103515245u + 12345u) >> 16) % 300));
      ids << ids_.back() << (i % 25 == 24 ? "\n" : " ");
    }
    data_ = Write("data.ids", ids.str());
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Path(const std::string& name) const { return (dir_ / name).string(); }
  std::string Write(const std::string& name, const std::string& bytes) const {
    std::ofstream(Path(name), std::ios::binary) << bytes;
    return Path(name);
  }
  CmdResult Brick(const std::string& args, bool with_registry = true) {
    return testing::RunBrick(args + (with_registry ? " --registry " + reg_ : ""), dir_ / "io");
  }
  JsonValue Json(const CmdResult& r) {
    EXPECT_EQ(r.code, 0) << r.err;
    auto j = ParseJson(r.out);
    EXPECT_TRUE(j.ok()) << r.out;
    return j.ok() ? *j : JsonValue();
  }
  // One line on stderr, starting "brick CMD: error: " and containing `what`.
  void ExpectOneLineError(const CmdResult& r, int code, const std::string& cmd, const std::string& what) {
    EXPECT_EQ(r.code, code) << r.err;
    EXPECT_EQ(r.err.rfind("brick " + cmd + ": error: ", 0), 0u) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_NE(r.err.find(what), std::string::npos) << r.err;
  }

  fs::path dir_;
  std::string reg_, data_;
  std::vector<int32_t> ids_;
};

TEST_F(MeasureCliTest, EvalMatchesTheNllOfDumpedLogits) {
  const std::vector<int32_t> short_ids(ids_.begin(), ids_.begin() + 20);
  std::string list, text;
  for (int32_t id : short_ids) {
    list += (list.empty() ? "" : ",") + std::to_string(id);
    text += std::to_string(id) + " ";
  }
  const std::string npy = Path("logits.npy");
  CmdResult r = Brick("run m --tokens " + list + " -n 0 --dump-logits " + npy);
  ASSERT_EQ(r.code, 0) << r.err;
  auto logits = ReadNpyF32(npy);
  ASSERT_TRUE(logits.ok()) << logits.status().ToString();
  const int64_t V = logits->first[1];
  double want = 0;
  for (size_t t = 0; t + 1 < short_ids.size(); ++t) {
    const float* row = logits->second.data() + static_cast<int64_t>(t) * V;
    long double m = row[0], s = 0;
    for (int64_t v = 0; v < V; ++v) m = std::max<long double>(m, row[v]);
    for (int64_t v = 0; v < V; ++v) s += std::exp(row[v] - m);
    want += static_cast<double>(std::log(s) + m - row[short_ids[t + 1]]);
  }
  want /= static_cast<double>(short_ids.size() - 1);
  const JsonValue j = Json(Brick("eval m --data " + Write("short.tokens", text) + " --json"));
  EXPECT_EQ(*j.Find("tokens")->as_int64(), 19);
  EXPECT_NEAR(j.Find("nll")->as_double(), want, 1e-5);
  EXPECT_NEAR(j.Find("perplexity")->as_double(), std::exp(want), 1e-4 * std::exp(want));
  EXPECT_GT(j.Find("tokens_per_s")->as_double(), 0.0);
  EXPECT_EQ(j.Find("model")->as_string(), "m@1");

  // Longer than the context: windows; every token after the first is scored once.
  const JsonValue w = Json(Brick("eval m --data " + data_ + " --json --context 64 --stride 16"));
  EXPECT_EQ(*w.Find("tokens")->as_int64(), 299);
  EXPECT_GT(*w.Find("windows")->as_int64(), 10);
  const CmdResult plain = Brick("eval m --data " + data_ + " --context 64");
  EXPECT_EQ(plain.code, 0) << plain.err;
  EXPECT_NE(plain.out.find("perplexity"), std::string::npos);
  EXPECT_EQ(plain.err, "");  // no progress bar when stderr is not a terminal
}

TEST_F(MeasureCliTest, EvalBadDataIsOneLine) {
  ExpectOneLineError(Brick("eval m --data " + Write("prose.txt", "def f(x): return x")), 1, "eval", "needs a tokenizer");
  const std::string outside = Write("outside.ids", "1 2\n3 300 4\n");
  ExpectOneLineError(Brick("eval m --data " + outside), 1, "eval",
                     outside + ":2:3: token id 300 is outside the vocabulary of 300 ids (0-299)");
  ExpectOneLineError(Brick("eval m --data " + Write("empty.ids", "\n\n")), 1, "eval", "holds no token ids");
  ExpectOneLineError(Brick("eval m --data " + Write("bad.npy", "\x93NUMPY garbage")), 1, "eval",
                     "not a 1-D integer .npy array");
  ExpectOneLineError(Brick("eval m --data " + Path("missing.ids")), 1, "eval", "missing.ids");
  ExpectOneLineError(Brick("eval m"), 2, "eval", "--data FILE is required");
  ExpectOneLineError(Brick("eval m --data " + data_ + " --context 8 --stride 9"), 2, "eval", "--stride");
  ExpectOneLineError(Brick("eval nope --data " + data_), 1, "eval", "nope");
}

TEST_F(MeasureCliTest, ProfileIsStoredAndDrivesPruneAndSpecs) {
  const std::string png = Path("p.png");
  const JsonValue p = Json(Brick("profile m --data " + data_ + " --save py-prof --json --context 128 --plot " + png));
  EXPECT_EQ(p.Find("model")->as_string(), "m@1");
  const int64_t tokens = *p.Find("tokens")->as_int64();
  EXPECT_GE(tokens, 300);
  const auto& layers = p.Find("layers")->as_array();
  ASSERT_EQ(layers.size(), 6u);
  for (const JsonValue& l : layers) {
    int64_t sum = 0;
    for (const JsonValue& c : l.Find("counts")->as_array()) sum += *c.as_int64();
    EXPECT_EQ(sum, 2 * tokens);  // top-2 of each kind
    EXPECT_EQ(l.Find("counts")->as_array().size(), l.Find("kind")->as_string() == "attn" ? 4u : 6u);
    EXPECT_EQ(l.Find("gate_mass")->as_array().size(), l.Find("counts")->as_array().size());
  }
  std::stringstream bytes;
  bytes << std::ifstream(png, std::ios::binary).rdbuf();
  EXPECT_EQ(bytes.str().substr(0, 8), "\x89PNG\r\n\x1a\n");

  const JsonValue pr = Json(Brick("prune m --profile py-prof --threshold 0.6 --save m-py --eval " + data_ +
                                  " --context 64 --json"));
  EXPECT_EQ(pr.Find("saved")->as_string(), "m-py@1");
  EXPECT_LT(*pr.Find("params_total")->as_int64(), *pr.Find("params_total_before")->as_int64());
  EXPECT_GT(pr.Find("perplexity_before")->as_double(), 0.0);
  EXPECT_GT(pr.Find("perplexity_after")->as_double(), 0.0);
  EXPECT_NE(pr.Find("perplexity_before")->as_double(), pr.Find("perplexity_after")->as_double());
  // The pruned model runs and keeps lineage to m@1.
  CmdResult run = Brick("run m-py --tokens 1,2,3 -n 2 --temp 0");
  EXPECT_EQ(run.code, 0) << run.err;
  const JsonValue models = Json(Brick("models --json"));
  bool found = false;
  for (const JsonValue& m : models.as_array())
    if (m.Find("name")->as_string() == "m-py") found = m.Find("base") && m.Find("base")->as_string() == "m@1";
  EXPECT_TRUE(found) << DumpJson(models);
  // Human output: parameters kept and perplexity before / after.
  CmdResult human = Brick("prune m --profile py-prof --threshold 0.6 --save m-py --eval " + data_ + " --context 64");
  EXPECT_EQ(human.code, 0) << human.err;
  EXPECT_NE(human.out.find("params kept:"), std::string::npos) << human.out;
  EXPECT_NE(human.out.find("per token"), std::string::npos) << human.out;
  EXPECT_NE(human.out.find("before,"), std::string::npos) << human.out;

  // A spec with keep: {profile, threshold} composes the same removal.
  std::ofstream(Path("spec.yaml")) << "model: m\nname: m-spec\nexperts:\n  mlp: {keep: {profile: py-prof, threshold: 0.6}}\n"
                                      "  attention: {keep: {profile: py-prof, threshold: 0.6}}\n";
  const JsonValue c = Json(Brick("compose " + Path("spec.yaml") + " --json"));
  EXPECT_EQ(*c.Find("params_total")->as_int64(), *pr.Find("params_total")->as_int64()) << DumpJson(c);

  // Bad input: unknown profile, a profile of another model, a threshold outside [0, 1].
  ExpectOneLineError(Brick("prune m --profile nope --threshold 0.3 --save x"), 1, "prune", "no profile 'nope'");
  ExpectOneLineError(Brick("prune o --profile py-prof --threshold 0.3 --save x"), 1, "prune",
                     "profile py-prof was measured on m@1, not on o@1");
  ExpectOneLineError(Brick("prune m --profile py-prof --threshold 1.5 --save x"), 2, "prune",
                     "--threshold must be in [0, 1]");
  ExpectOneLineError(Brick("prune m --profile py-prof --threshold -0.1 --save x"), 2, "prune",
                     "--threshold must be in [0, 1]");
  ExpectOneLineError(Brick("profile m --data " + data_), 2, "profile", "--save NAME is required");
}

TEST_F(MeasureCliTest, PruneKeepsTopKWhenTheThresholdWouldNot) {
  ASSERT_EQ(Brick("profile m --data " + data_ + " --save p").code, 0);
  const CmdResult r = Brick("prune m --profile p --threshold 1 --save m-tiny --json");
  const JsonValue j = Json(r);
  // Every layer keeps exactly top-k = 2 experts of each kind (threshold 1 keeps only the busiest).
  for (const char* kind : {"attn", "mlp"}) {
    const JsonValue* removed = j.Find("removed")->Find(kind);
    for (const auto& [layer, ids] : removed->as_object())
      EXPECT_EQ(ids.as_array().size(), std::string(kind) == "attn" ? 2u : 4u) << kind << " layer " << layer;
  }
  EXPECT_NE(r.err.find("fewer than top_k 2"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace brickrt
