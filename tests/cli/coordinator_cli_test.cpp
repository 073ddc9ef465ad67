// A coordinator across processes (issue #6): `brick serve` with role: coordinator answers
// `brick run --server` with what the manifest gives locally and names it; `brick tag` moves it,
// `brick swap` swaps and rolls back, a failed swap is one line and changes nothing, `brick status`
// tells what is served; a killed coordinator is a one-line error for the client, never a hang.
#include <gtest/gtest.h>

#include "brick_runner.h"
#include "core/json.h"
#include "serve_process.h"

namespace brickrt {
namespace {

namespace fs = std::filesystem;
using testing::CmdResult;

class CoordinatorCliTest : public testing::CliTest {
 protected:
  CoordinatorCliTest() : CliTest("brick_coordinator_cli_") {}

  void SetUp() override {
    for (const char* seed : {"1", "2"}) {
      const std::string dir = Path(std::string("m") + seed);
      ASSERT_EQ(Brick("make-test-model " + dir + " --layers 2 --d-model 64 --vocab 300 --seed " + seed, false).code, 0);
      ASSERT_EQ(Brick("import " + dir + " --name tiny").code, 0);
    }
    ASSERT_EQ(Brick("tag tiny@1 stable").code, 0);
    endpoint_ = "tcp://127.0.0.1:" + std::to_string(testing::FreePort());
    std::ofstream(Path("coordinator.yaml")) << "role: coordinator\nname: edge\nregistry: " << reg_
                                            << "\nlisten: " << endpoint_ << "\nmodel: tiny:stable\nmax_batch: 4\n"
                                            << "max_context: 128\nthreads: 1\n";
  }
  void TearDown() override {
    server_.Stop();
  }

  // `brick run ... --json` and its "manifest" and "generated" fields.
  std::pair<std::string, std::string> Run(const std::string& what) {
    const CmdResult r = Brick("run " + what + " --tokens 5,17,42 -n 6 --temp 0 --json", what.find("--server") == std::string::npos);
    EXPECT_EQ(r.code, 0) << r.err;
    auto j = ParseJson(r.out);
    if (!j.ok() || j->Find("generated") == nullptr) return {"", r.out + r.err};
    const JsonValue* m = j->Find("manifest");
    return {m == nullptr ? "" : m->as_string(), DumpJson(*j->Find("generated"))};
  }

  std::string endpoint_;
  testing::ServeProcess server_{dir_ / "serve.out", dir_ / "serve.err"};
};

TEST_F(CoordinatorCliTest, ServesSwapsFollowsTheTagAndRollsBack) {
  const auto [m1, local1] = Run("tiny@1");
  const auto [m2, local2] = Run("tiny@2");
  ASSERT_EQ(m1, "tiny@1");
  ASSERT_NE(local1, local2);
  ASSERT_NO_FATAL_FAILURE(server_.Start({Path("coordinator.yaml")}));
  EXPECT_NE(server_.out().find("serving tiny@1 on " + endpoint_ + " as coordinator 'edge' (following tiny:stable)"),
            std::string::npos)
      << server_.out();
  const std::string server = "--server " + endpoint_ + " --timeout-ms 20000";
  EXPECT_EQ(Run(server), std::make_pair(std::string("tiny@1"), local1));

  // The tag moves: the coordinator follows within a second.
  ASSERT_EQ(Brick("tag tiny@2 stable").code, 0);
  std::string serving;
  for (int i = 0; i < 100 && serving != "tiny@2"; ++i) {
    const CmdResult s = Brick("status " + endpoint_ + " --json", false);
    ASSERT_EQ(s.code, 0) << s.err;
    auto j = ParseJson(s.out);
    ASSERT_TRUE(j.ok()) << s.out;
    serving = j->Find("manifest")->as_string();
    EXPECT_EQ(j->Find("following")->as_string(), "tiny:stable");
    if (serving != "tiny@2") std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_EQ(serving, "tiny@2");
  EXPECT_EQ(Run(server), std::make_pair(std::string("tiny@2"), local2));

  // Explicit rollback, then a swap that cannot load: one line, and tiny@1 keeps serving.
  const CmdResult back = Brick("swap " + endpoint_ + " --to tiny@1 --json", false);
  ASSERT_EQ(back.code, 0) << back.err;
  auto j = ParseJson(back.out);
  ASSERT_TRUE(j.ok()) << back.out;
  EXPECT_EQ(j->Find("manifest")->as_string(), "tiny@1");
  EXPECT_EQ(j->Find("previous")->as_string(), "tiny@2");
  const CmdResult bad = Brick("swap " + endpoint_ + " --to tiny@7", false);
  EXPECT_EQ(bad.code, 1);
  EXPECT_EQ(bad.err.rfind("brick swap: error: ", 0), 0u) << bad.err;
  EXPECT_NE(bad.err.find("swap to tiny@7 failed; still serving tiny@1"), std::string::npos) << bad.err;
  EXPECT_EQ(bad.err.find('\n'), bad.err.size() - 1) << "one line: " << bad.err;
  EXPECT_EQ(Run(server), std::make_pair(std::string("tiny@1"), local1));

  // A dead coordinator: the client says so in one line within its timeout.
  EXPECT_EQ(server_.Stop(SIGKILL), -1);
  const CmdResult dead = Brick("run --server " + endpoint_ + " --timeout-ms 300 --tokens 1 -n 2", false);
  EXPECT_EQ(dead.code, 1);
  EXPECT_NE(dead.err.find("coordinator at " + endpoint_ + " did not answer within 300 ms"), std::string::npos)
      << dead.err;
}

TEST_F(CoordinatorCliTest, UsageAndConfigErrorsAreOneLine) {
  const CmdResult both = Brick("run tiny --server " + endpoint_ + " --tokens 1", false);
  EXPECT_EQ(both.code, 2);
  EXPECT_NE(both.err.find("--server runs on the coordinator's model"), std::string::npos) << both.err;
  const CmdResult no_to = Brick("swap " + endpoint_, false);
  EXPECT_EQ(no_to.code, 2);
  std::ofstream(Path("bad.yaml")) << "role: coordinator\nlisten: " << endpoint_ << "\nmodel: tiny\nserve: [x]\n";
  const CmdResult bad = Brick("serve " + Path("bad.yaml"));
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.err.find("bad.yaml:4:1: serve: is not a key of role coordinator"), std::string::npos) << bad.err;
  std::ofstream(Path("missing.yaml")) << "role: coordinator\nlisten: " << endpoint_ << "\nmodel: nope\n";
  const CmdResult missing = Brick("serve " + Path("missing.yaml"));
  EXPECT_EQ(missing.code, 1);
  EXPECT_NE(missing.err.find("'nope' not found"), std::string::npos) << missing.err;
}

}  // namespace
}  // namespace brickrt
