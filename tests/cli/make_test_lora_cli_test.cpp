// brick make-test-lora end to end: a random adapter for an imported test model goes through
// import-lora into a spec's plugins and changes what `brick run` computes, on the fly and merged alike;
// both key forms hold the same bricks; a submodel base skips its removed experts; bad options fail
// with one line.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "brick_runner.h"
#include "core/json.h"
#include "core/npy.h"

namespace brickrt {
namespace {

namespace fs = std::filesystem;

using testing::CmdResult;

class MakeTestLoraCliTest : public testing::CliTest {
 protected:
  MakeTestLoraCliTest() : CliTest("brick_make_lora_cli_") {}

  void SetUp() override {
    // F32, so merged and on-the-fly logits can be compared tightly. D = 32, F = 64, V = 100; 3 and 5
    // MLP experts.
    CmdResult r = Brick("make-test-model " + Path("m") +
                            " --layers 2 --d-model 32 --attn-experts 4 --mlp-experts 3,5 --vocab 100 --dtype f32",
                        false);
    ASSERT_EQ(r.code, 0) << r.err;
    r = Brick("import " + Path("m") + " --name tiny");
    ASSERT_EQ(r.code, 0) << r.err;
  }

  std::string WriteSpec(const std::string& name, const std::string& text) const {
    std::ofstream(Path(name)) << text;
    return Path(name);
  }
  // Imports adapter `dir` as plugin `name` and returns import-lora's JSON.
  JsonValue ImportLora(const std::string& dir, const std::string& name, const std::string& base = "tiny") {
    const CmdResult r = Brick("import-lora " + dir + " --name " + name + " --base " + base + " --json");
    EXPECT_EQ(r.code, 0) << r.err;
    auto j = ParseJson(r.out);
    EXPECT_TRUE(j.ok()) << r.out;
    return j.ok() ? *j : JsonValue();
  }
  // Logits [T, V] of the prompt under `what` (a model ref or a spec file).
  std::vector<float> Logits(const std::string& what, const std::string& file) {
    const CmdResult r = Brick("run " + what + " --tokens 5,17,42,3 -n 0 --dump-logits " + Path(file));
    EXPECT_EQ(r.code, 0) << r.err;
    auto l = ReadNpyF32(Path(file));
    EXPECT_TRUE(l.ok()) << l.status().ToString();
    if (!l.ok()) return {};
    EXPECT_EQ(l->first, (Shape{4, 100}));
    return l->second;
  }
  std::string Generated(const std::string& what) {
    const CmdResult r = Brick("run " + what + " --tokens 5,17,42 -n 8 --temp 0 --ignore-eos --json");
    EXPECT_EQ(r.code, 0) << r.err;
    auto j = ParseJson(r.out);
    return j.ok() ? DumpJson(*j->Find("generated")) : "";
  }
};

float MaxAbsDiff(const std::vector<float>& x, const std::vector<float>& y) {
  EXPECT_EQ(x.size(), y.size());
  float m = 0;
  for (size_t i = 0; i < std::min(x.size(), y.size()); ++i) m = std::max(m, std::fabs(x[i] - y[i]));
  return m;
}

std::string FileBytes(const std::string& path) {
  std::stringstream s;
  s << std::ifstream(path, std::ios::binary).rdbuf();
  return s.str();
}

void ExpectOneLine(const CmdResult& r, int code, const std::vector<std::string>& needles) {
  EXPECT_EQ(r.code, code) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  for (const std::string& n : needles) EXPECT_NE(r.err.find(n), std::string::npos) << "'" << n << "' not in: " << r.err;
}

TEST_F(MakeTestLoraCliTest, RandomAdapterChangesTheModelOnTheFlyAndMerged) {
  const std::string adapter = Path("adapter");
  CmdResult r = Brick("make-test-lora " + adapter +
                      " --base tiny --targets 'L*.mlp.E*.w1,L*.mlp.E*.w2,lm_head.weight'"
                      " --rank 4 --alpha 8 --seed 3");
  ASSERT_EQ(r.code, 0) << r.err;
  for (const char* s : {"17 lora targets", "tiny@1", "rank 4", "bytes"})
    EXPECT_NE(r.out.find(s), std::string::npos) << s << " not in: " << r.out;
  EXPECT_TRUE(fs::exists(adapter + "/adapter_config.json"));

  const JsonValue j = ImportLora(adapter, "rand-lora");
  EXPECT_EQ(j.Find("plugin")->as_string(), "rand-lora@1");
  EXPECT_EQ(*j.Find("targets")->as_int64(), 2 * (3 + 5) + 1);
  EXPECT_EQ(DumpJson(*j.Find("ranks")), "[4]");

  const std::string on_the_fly = WriteSpec("fly.yaml", "model: tiny\nplugins: [{lora: rand-lora@1, scale: 0.5}]\n");
  const std::string merged =
      WriteSpec("merged.yaml", "model: tiny\nplugins: [{lora: rand-lora@1, scale: 0.5, merge: true}]\n");
  const std::vector<float> plain = Logits("tiny", "plain.npy");
  const std::vector<float> fly = Logits(on_the_fly, "fly.npy");
  const std::vector<float> merge = Logits(merged, "merged.npy");
  // The delta is as large as the base projections' outputs (x 0.5 scale): far above rounding.
  EXPECT_GT(MaxAbsDiff(plain, fly), 0.05f);
  // Merged in double and rounded once to F32 vs two rank-4 GEMVs per projection: rounding only.
  EXPECT_LT(MaxAbsDiff(fly, merge), 1e-3f);
  const std::string gen = Generated(on_the_fly);
  EXPECT_NE(gen, "");
  EXPECT_EQ(gen, Generated(merged));
}

TEST_F(MakeTestLoraCliTest, SameSeedSameBytesAndBothFormsHoldTheSameBricks) {
  const std::string opts = " --base tiny --targets '*' --rank 2 --dtype bf16";
  ASSERT_EQ(Brick("make-test-lora " + Path("a") + opts).code, 0);
  ASSERT_EQ(Brick("make-test-lora " + Path("b") + opts).code, 0);
  ASSERT_EQ(Brick("make-test-lora " + Path("c") + opts + " --seed 2").code, 0);
  const CmdResult r = Brick("make-test-lora " + Path("s") + opts + " --form stacked");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("stacked"), std::string::npos) << r.out;
  const std::string weights = "/adapter_model.safetensors";
  EXPECT_EQ(FileBytes(Path("a") + weights), FileBytes(Path("b") + weights));
  EXPECT_NE(FileBytes(Path("a") + weights), FileBytes(Path("c") + weights));
  EXPECT_NE(FileBytes(Path("a") + weights), FileBytes(Path("s") + weights));  // other keys and shapes

  JsonValue j = ImportLora(Path("a"), "every");
  EXPECT_EQ(*j.Find("targets")->as_int64(), 2 * (4 + 4 + 3 + 5) + 1);
  // The stacked file holds the same bricks: importing it adds nothing.
  j = ImportLora(Path("s"), "every");
  EXPECT_FALSE(j.Find("new_manifest")->as_bool());
  EXPECT_EQ(*j.Find("new_bricks")->as_int64(), 0);
}

TEST_F(MakeTestLoraCliTest, SubmodelBaseSkipsRemovedExperts) {
  const std::string spec = WriteSpec("sub.yaml", "model: tiny\nname: sub\nexperts:\n  mlp: {drop: {1: [0, 2]}}\n");
  CmdResult r = Brick("compose " + spec + " --save");
  ASSERT_EQ(r.code, 0) << r.err;
  r = Brick("make-test-lora " + Path("sub-adapter") + " --base sub");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("12 lora targets"), std::string::npos) << r.out;  // w1, w2 of 3 + 3 kept MLP experts
  const JsonValue j = ImportLora(Path("sub-adapter"), "sub-lora", "sub");
  EXPECT_EQ(*j.Find("targets")->as_int64(), 12);
  ExpectOneLine(Brick("make-test-lora " + Path("x") + " --base sub --targets 'L1.mlp.E2.*'"), 2,
                {"'L1.mlp.E2.*'", "removed"});
}

TEST_F(MakeTestLoraCliTest, BadOptionsFailWithOneLine) {
  const std::string out = Path("out");
  ExpectOneLine(Brick("make-test-lora " + out + " --base tiny --targets 'L7.*'"), 2,
                {"'L7.*'", "selects no target", "L0.mlp.E0.w1"});
  ExpectOneLine(Brick("make-test-lora " + out + " --base tiny --targets 'L0.*,,lm_head.weight'"), 2, {"empty glob"});
  ExpectOneLine(Brick("make-test-lora " + out + " --base tiny --rank 0"), 2, {"--rank"});
  ExpectOneLine(Brick("make-test-lora " + out + " --base tiny --dtype f64"), 2, {"--dtype", "f64"});
  ExpectOneLine(Brick("make-test-lora " + out + " --base tiny --form packed"), 2, {"--form", "packed"});
  ExpectOneLine(Brick("make-test-lora " + out), 2, {"--base"});
  ExpectOneLine(Brick("make-test-lora " + out + " --base nosuch"), 1, {"nosuch"});
  EXPECT_FALSE(fs::exists(out)) << "nothing written on error";
  ASSERT_EQ(Brick("make-test-lora " + out + " --base tiny").code, 0);
  ExpectOneLine(Brick("make-test-lora " + out + " --base tiny"), 1, {out, "not empty"});
  ImportLora(out, "p");
  ExpectOneLine(Brick("make-test-lora " + Path("y") + " --base p"), 1, {"plugin", "not a model"});
}

}  // namespace
}  // namespace brickrt
