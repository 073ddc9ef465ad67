// The edge–cloud split across processes (issue #5): `brick serve` hosts the MLP experts on tcp
// loopback, `brick run SPEC.yaml` with a placement sends them there, and the logits equal the
// all-local run's to the last bit; once the node is gone the run fails with one line, and with
// `on_failure: local-fallback` it still answers.
#include <gtest/gtest.h>

#include <sstream>

#include "brick_runner.h"
#include "core/json.h"
#include "serve_process.h"

namespace brickrt {
namespace {

namespace fs = std::filesystem;
using testing::CmdResult;
using testing::FreePort;
using testing::ReadAll;

class ServeCliTest : public testing::CliTest {
 protected:
  ServeCliTest() : CliTest("brick_serve_cli_") {}

  void SetUp() override {
    ASSERT_EQ(Brick("make-test-model " + Path("m") + " --layers 2 --d-model 64 --mlp-experts 6 --vocab 300", false).code, 0);
    ASSERT_EQ(Brick("import " + Path("m") + " --name tiny").code, 0);
    port_ = FreePort();
    ASSERT_GT(port_, 0);
    endpoint_ = "tcp://127.0.0.1:" + std::to_string(port_);
    std::ofstream(Path("node.yaml")) << "role: bricks\nname: cloud\nregistry: " << reg_ << "\nlisten: " << endpoint_
                                     << "\nserve: [\"tiny/L*.mlp.E*\"]\n";
    for (const char* policy : {"fail", "local-fallback"}) {
      std::ofstream(Path(std::string("split-") + policy + ".yaml"))
          << "model: tiny\nplacement:\n  nodes:\n    cloud: {endpoint: \"" << endpoint_
          << "\", timeout_ms: 400}\n  rules:\n    - {match: \"L*.mlp.E*\", on: cloud}\n  on_failure: " << policy << "\n";
    }
    std::ofstream(Path("split-skip.yaml")) << "model: tiny\nplacement:\n  nodes:\n    cloud: {endpoint: \"" << endpoint_
                                           << "\", timeout_ms: 400}\n  rules:\n    - {match: \"L*.mlp.E0\", on: cloud}\n"
                                           << "    - {match: \"L*.mlp.E3\", on: cloud}\n"
                                           << "  on_failure: skip-expert\n";
    std::ofstream(Path("drop.yaml")) << "model: tiny\nexperts:\n  mlp:\n    drop: {\"0-1\": [0, 3]}\n";
  }
  void TearDown() override { StopNode(); }

  // Starts `brick serve NODE [extra args]` and waits until it says it serves.
  void StartNode(std::vector<std::string> extra = {}) {
    if (extra.empty()) extra = {Path("node.yaml")};
    node_.Start(std::move(extra));
  }
  // SIGTERM, then the exit status (0: stopped cleanly).
  int StopNode() { return node_.Stop(); }
  std::string Logits(const std::string& what, int* code) {
    const std::string npy = Path("logits.npy");
    fs::remove(npy);
    const CmdResult r = Brick("run " + what + " --tokens 5,17,42,9 -n 4 --temp 0 --dump-logits " + npy);
    *code = r.code;
    last_err_ = r.err;
    return r.code == 0 ? ReadAll(npy) + r.out : "";
  }

  std::string endpoint_, last_err_;
  int port_ = 0;
  testing::ServeProcess node_{dir_ / "serve.out", dir_ / "serve.err"};
};

TEST_F(ServeCliTest, SplitRunAcrossProcessesEqualsLocalAndADeadNodeIsOneLine) {
  int code = 0;
  const std::string local = Logits("tiny", &code);
  ASSERT_EQ(code, 0) << last_err_;
  ASSERT_NO_FATAL_FAILURE(StartNode());
  EXPECT_NE(ReadAll(Path("serve.out")).find("serving 12 bricks on " + endpoint_ + " as node 'cloud'"),
            std::string::npos)
      << ReadAll(Path("serve.out"));
  EXPECT_EQ(Logits(Path("split-fail.yaml"), &code), local) << last_err_;
  EXPECT_EQ(code, 0);
  // The trace: one line per token per layer (4 prompt + 3 decode tokens, 2 layers), MLP experts on
  // the node, attention local, every expert with its brick digest.
  const CmdResult traced = Brick("run " + Path("split-fail.yaml") + " --tokens 5,17,42,9 -n 4 --temp 0 --trace " +
                                 Path("trace.jsonl"));
  ASSERT_EQ(traced.code, 0) << traced.err;
  std::istringstream lines(ReadAll(Path("trace.jsonl")));
  int n_lines = 0;
  for (std::string line; std::getline(lines, line); ++n_lines) {
    auto j = ParseJson(line);
    ASSERT_TRUE(j.ok()) << line;
    EXPECT_EQ(DumpJson(*j->Find("mlp")->Find("on")), "[\"cloud\",\"cloud\"]") << line;
    EXPECT_EQ(DumpJson(*j->Find("attention")->Find("on")), "[\"local\",\"local\"]") << line;
    EXPECT_EQ(j->Find("mlp")->Find("digests")->as_array()[0].as_string().size(), 64u) << line;
    EXPECT_EQ(j->Find("mlp")->Find("gates")->as_array().size(), 2u) << line;
  }
  EXPECT_EQ(n_lines, 7 * 2);
  EXPECT_EQ(StopNode(), 0);
  EXPECT_NE(ReadAll(Path("serve.err")).find("stopped (SIGTERM)"), std::string::npos);

  Logits(Path("split-fail.yaml"), &code);
  EXPECT_EQ(code, 1);
  EXPECT_NE(last_err_.find("brick run: error: "), std::string::npos) << last_err_;
  EXPECT_NE(last_err_.find("node 'cloud' (" + endpoint_ + ") did not answer"), std::string::npos) << last_err_;
  EXPECT_EQ(last_err_.find('\n'), last_err_.size() - 1) << "one line: " << last_err_;
  EXPECT_EQ(Logits(Path("split-local-fallback.yaml"), &code), local) << last_err_;
  EXPECT_EQ(code, 0);
  // skip-expert with the node dead: the answer of the spec that drops the node's experts, one warning.
  const std::string dropped = Logits(Path("drop.yaml"), &code);
  ASSERT_EQ(code, 0) << last_err_;
  EXPECT_NE(dropped, local);
  EXPECT_EQ(Logits(Path("split-skip.yaml"), &code), dropped) << last_err_;
  EXPECT_EQ(code, 0);
  const auto warnings = [](const std::string& err) {
    size_t n = 0;
    for (size_t at = err.find("leave the routing"); at != std::string::npos; at = err.find("leave the routing", at + 1)) ++n;
    return n;
  };
  EXPECT_EQ(warnings(last_err_), 1u) << last_err_;
}

// configs/cloud-node.yaml + configs/edge-split.yaml as scripts/demo runs them (on a free port): the
// private expert stays on the device, the node serves the others, the answer is the local one.
TEST_F(ServeCliTest, ExampleConfigsSplitTheDemoModel) {
  ASSERT_EQ(Brick("import " + Path("m") + " --name tiny-demo").code, 0);
  ASSERT_EQ(Brick("tag tiny-demo stable").code, 0);
  ASSERT_EQ(Brick("set-visibility tiny-demo/L0.mlp.E0 private").code, 0);
  std::string spec = ReadAll(fs::path(BRICK_SOURCE_DIR) / "configs/edge-split.yaml");
  const std::string example = "tcp://127.0.0.1:7001";
  ASSERT_NE(spec.find(example), std::string::npos);
  spec.replace(spec.find(example), example.size(), endpoint_);
  std::ofstream(Path("edge-split.yaml")) << spec;
  int code = 0;
  const std::string local = Logits("tiny-demo", &code);
  ASSERT_EQ(code, 0) << last_err_;
  ASSERT_NO_FATAL_FAILURE(StartNode({std::string(BRICK_SOURCE_DIR) + "/configs/cloud-node.yaml", "--registry", reg_,
                                     "--listen", endpoint_}));
  EXPECT_NE(ReadAll(Path("serve.out")).find("serving 11 bricks"), std::string::npos)
      << "12 MLP experts less the private one: " << ReadAll(Path("serve.out"));
  EXPECT_EQ(Logits(Path("edge-split.yaml"), &code), local) << last_err_;
  // Placing the private expert on the node is refused before anything is sent.
  const std::string local_rule = "{match: \"L0.mlp.E0\", on: local}";
  ASSERT_NE(spec.find(local_rule), std::string::npos);
  spec.replace(spec.find(local_rule), local_rule.size(), "{match: \"L0.mlp.E0\", on: cloud}");
  std::ofstream(Path("leak.yaml")) << spec;
  Logits(Path("leak.yaml"), &code);
  EXPECT_EQ(code, 1);
  EXPECT_NE(last_err_.find("private brick tiny-demo/L0.mlp.E0@1 cannot be placed on node 'cloud'"), std::string::npos)
      << last_err_;
}

TEST_F(ServeCliTest, NodeConfigErrorsAreOneLine) {
  std::ofstream(Path("open.yaml")) << "role: bricks\nregistry: " << reg_ << "\nlisten: tcp://0.0.0.0:7001\nserve: tiny/*\n";
  CmdResult r = Brick("serve " + Path("open.yaml"), false);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("reachable from other machines"), std::string::npos) << r.err;
  std::ofstream(Path("none.yaml")) << "role: bricks\nregistry: " << reg_ << "\nlisten: " << endpoint_
                                   << "\nserve: nope/*\n";
  r = Brick("serve " + Path("none.yaml"), false);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("nope/*"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace brickrt
