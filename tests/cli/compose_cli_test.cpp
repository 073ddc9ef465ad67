// brick compose / brick run SPEC.yaml end to end: the per-layer table and JSON, --save then run by
// name, the example specs in configs/, and one clear line (nothing saved) for each bad spec.
#include <gtest/gtest.h>
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

class ComposeCliTest : public testing::CliTest {
 protected:
  ComposeCliTest() : CliTest("brick_compose_cli_") {}

  void SetUp() override {
    // Named like the demo's model so the example spec configs/tiny-demo-coder.yaml resolves.
    CmdResult r = Brick("make-test-model " + Path("m") +
                            " --layers 3 --d-model 64 --attn-experts 4 --mlp-experts 6 --vocab 300 --dtype f32",
                        false);
    ASSERT_EQ(r.code, 0) << r.err;
    r = Brick("import " + Path("m") + " --name tiny-demo");
    ASSERT_EQ(r.code, 0) << r.err;
    r = Brick("tag tiny-demo@1 stable");
    ASSERT_EQ(r.code, 0) << r.err;
  }

  std::string WriteSpec(const std::string& name, const std::string& text) const {
    std::ofstream(Path(name)) << text;
    return Path(name);
  }
  size_t ModelCount() {
    const CmdResult r = Brick("models --json");
    EXPECT_EQ(r.code, 0) << r.err;
    auto j = ParseJson(r.out);
    return j.ok() && j->is_array() ? j->as_array().size() : 0;
  }
  // The greedy continuation and the prompt logits' bytes (--dump-logits): equal strings mean the same
  // model to the last bit, so a scale or a lora that differs cannot hide behind equal argmaxes.
  std::string Generated(const std::string& what) {
    const std::string npy = Path("logits.npy");
    const CmdResult r = Brick("run " + what + " --tokens 5,17,42 -n 6 --temp 0 --json --dump-logits " + npy);
    EXPECT_EQ(r.code, 0) << r.err;
    auto j = ParseJson(r.out);
    std::stringstream logits;
    logits << std::ifstream(npy, std::ios::binary).rdbuf();
    EXPECT_GT(logits.str().size(), 128u);
    return j.ok() ? DumpJson(*j->Find("generated")) + logits.str() : "";
  }
};

TEST_F(ComposeCliTest, ComposeShowsThePerLayerTableAndSaveThenRunByName) {
  const std::string spec = WriteSpec("small.yaml",
                                     "model: tiny-demo:stable\nname: small\n"
                                     "experts:\n  mlp: {top_k: 1, drop: {0: [3, 5], \"1-2\": 0}}\n"
                                     "  attention: {keep: {2: \"0-1\"}}\n");
  CmdResult r = Brick("compose " + spec);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("small: from tiny-demo@1, 3 layers"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("4/6 removed 3,5"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("2/4 removed 2-3"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("bytes to load:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("active per token"), std::string::npos) << r.out;
  EXPECT_EQ(ModelCount(), 1u) << "compose without --save stores nothing";

  r = Brick("compose " + spec + " --json");
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = ParseJson(r.out);
  ASSERT_TRUE(j.ok()) << r.out;
  EXPECT_EQ(j->Find("base")->as_string(), "tiny-demo@1");
  EXPECT_EQ(j->Find("layers")->as_array().size(), 3u);
  EXPECT_EQ(DumpJson(*j->Find("layers")->as_array()[0].Find("mlp_kept")), "[0,1,2,4]");
  EXPECT_LT(*j->Find("bytes_to_load")->as_int64(), *j->Find("base_bytes")->as_int64());

  r = Brick("compose " + spec + " --save");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("saved small@1"), std::string::npos) << r.out;
  r = Brick("compose " + spec + " --save --json");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("\"new_manifest\":false"), std::string::npos) << r.out;
  EXPECT_EQ(ModelCount(), 2u);

  // The spec and the saved manifest run the same submodel; the full model answers differently.
  const std::string from_spec = Generated(spec);
  EXPECT_EQ(Generated("small"), from_spec);
  EXPECT_NE(from_spec, "");
}

// The demo's spec, with the demo's plugin (scripts/demo makes and imports it the same way).
TEST_F(ComposeCliTest, ExampleSpecInConfigsRuns) {
  const std::string spec = std::string(BRICK_SOURCE_DIR) + "/configs/tiny-demo-coder.yaml";
  CmdResult r = Brick("compose " + spec);
  ASSERT_EQ(r.code, 1) << "the plugin is not imported yet: " << r.out;
  EXPECT_NE(r.err.find("tiny-demo-lora@1"), std::string::npos) << r.err;
  r = Brick("make-test-lora " + Path("lora") + " --base tiny-demo --targets 'L*.mlp.E*.w1' --rank 8");
  ASSERT_EQ(r.code, 0) << r.err;
  r = Brick("import-lora " + Path("lora") + " --name tiny-demo-lora --base tiny-demo");
  ASSERT_EQ(r.code, 0) << r.err;
  r = Brick("compose " + spec + " --save");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("plugin tiny-demo-lora@1:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("applied on the fly"), std::string::npos) << r.out;
  EXPECT_EQ(Generated(spec), Generated("tiny-demo-coder"));
}

TEST_F(ComposeCliTest, BadSpecsFailWithOneLineAndSaveNothing) {
  struct Case {
    const char* yaml;
    const char* message;
  };
  const Case cases[] = {
      {"model: tiny-demo\nexperts: {mlp: {drop: {0: [1, 2}}}\n", "bad.yaml:2:"},  // malformed YAML: file:line:col
      {"model: tiny-demo\nname: x\nexpert: {}\n", "bad.yaml:3:1: expert:"},       // unknown key
      {"model: tiny-demo@9\nname: x\n", "tiny-demo@9"},
      {"model: tiny-demo\nname: x\nexperts: {mlp: {drop: {0: 6}}}\n", "expert 6 of layer 0 is out of range"},
      {"model: tiny-demo\nname: x\nexperts: {mlp: {top_k: 6, drop: {1: 0}}}\n", "top_k 6 is larger"},
  };
  for (const Case& c : cases) {
    const std::string spec = WriteSpec("bad.yaml", c.yaml);
    const CmdResult r = Brick("compose " + spec + " --save");
    EXPECT_EQ(r.code, 1) << c.yaml << r.out;
    EXPECT_NE(r.err.find("brick compose: error: "), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << c.yaml << " -> " << r.err;
    EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "one line: " << r.err;
    EXPECT_EQ(Brick("run " + spec + " --tokens 1,2").code, 1) << c.yaml;
  }
  EXPECT_EQ(ModelCount(), 1u);
  const CmdResult missing = Brick("run " + Path("nope.yaml") + " --tokens 1,2");
  EXPECT_EQ(missing.code, 1);
  EXPECT_NE(missing.err.find("nope.yaml"), std::string::npos) << missing.err;
}

}  // namespace
}  // namespace brickrt
