// Placing a model on this machine's GPUs from the command line (issue #8): `brick devices`, `brick run
// --device`, and configs/gpu-experts.yaml. On a machine with a GPU the runs must give the CPU's tokens;
// without one (CI) each must fail with one line naming the device, never fall back silently.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "core/json.h"
#include "tests/cli/brick_runner.h"

namespace brickrt {
namespace {

namespace fs = std::filesystem;

class DeviceCliTest : public testing::CliTest {
 protected:
  DeviceCliTest() : CliTest("brick_device_cli_") {}

  void SetUp() override {
    // F32 weights: the GPU's GEMMs then differ from the CPU's by summation order only, so greedy
    // tokens agree.
    ASSERT_EQ(Brick("make-test-model " + Path("m") + " --layers 2 --d-model 64 --mlp-experts 6 --vocab 300 --dtype f32",
                    false)
                  .code,
              0);
    ASSERT_EQ(Brick("import " + Path("m") + " --name tiny-demo").code, 0);
    ASSERT_EQ(Brick("tag tiny-demo stable").code, 0);
    const testing::CmdResult devices = Brick("devices --json", false);
    ASSERT_EQ(devices.code, 0) << devices.err;
    auto json = ParseJson(devices.out);
    ASSERT_TRUE(json.ok()) << devices.out;
    gpus_ = json->Find("devices")->as_array().size();
  }

  // Generated ids of a greedy run, or the one-line error.
  testing::CmdResult Run(const std::string& what) { return Brick("run " + what + " --tokens 5,17,42,9 -n 8 --temp 0"); }

  size_t gpus_ = 0;
};

TEST_F(DeviceCliTest, DevicesListsTheCpuAndEachGpu) {
  const testing::CmdResult r = Brick("devices", false);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("cpu\n", 0), 0u) << r.out;
  size_t lines = 0;
  for (char c : r.out) lines += c == '\n';
  EXPECT_EQ(lines, 1 + gpus_) << r.out;
  if (gpus_ == 0) {
    EXPECT_NE(r.err.find("brick devices: "), std::string::npos) << "says why none is listed";
  }
  EXPECT_EQ(Brick("devices --self-test", false).code, 0);
}

TEST_F(DeviceCliTest, GpuPlacementsRunOrSayWhyNot) {
  const testing::CmdResult cpu = Run("tiny-demo");
  ASSERT_EQ(cpu.code, 0) << cpu.err;
  std::string spec;
  {
    std::ifstream f(fs::path(BRICK_SOURCE_DIR) / "configs/gpu-experts.yaml");
    spec.assign(std::istreambuf_iterator<char>(f), {});
  }
  std::ofstream(Path("gpu-experts.yaml")) << spec;
  std::ofstream(Path("gpu-whole.yaml")) << "model: tiny-demo:stable\nplacement: {device: cuda:0}\n";
  for (const std::string& what : {std::string("tiny-demo --device cuda:0"), Path("gpu-experts.yaml"),
                                  Path("gpu-whole.yaml"), "--checkpoint " + Path("m") + " --device cuda:0"}) {
    SCOPED_TRACE(what);
    const testing::CmdResult gpu = Run(what);
    if (gpus_ > 0) {
      EXPECT_EQ(gpu.code, 0) << gpu.err;
      EXPECT_EQ(gpu.out, cpu.out);
      continue;
    }
    EXPECT_EQ(gpu.code, 1);
    EXPECT_NE(gpu.err.find("cuda:0"), std::string::npos) << gpu.err;
    EXPECT_EQ(gpu.err.find('\n'), gpu.err.size() - 1) << "one line: " << gpu.err;
  }
  // --device cpu is the plain run.
  EXPECT_EQ(Run("tiny-demo --device cpu").out, cpu.out);
}

// brick eval / profile --device: the same perplexity as on the CPU where there is a GPU (F32 weights:
// summation order only), one line naming the device where there is none.
TEST_F(DeviceCliTest, EvalAndProfileOnAGpu) {
  {
    std::ofstream ids(Path("data.ids"));
    for (int i = 0; i < 200; ++i) ids << (i * 37 + 11) % 300 << (i % 20 == 19 ? "\n" : " ");
  }
  const std::string data = " --data " + Path("data.ids") + " --context 64 --stride 32 --json";
  const testing::CmdResult cpu = Brick("eval tiny-demo" + data);
  ASSERT_EQ(cpu.code, 0) << cpu.err;
  const testing::CmdResult gpu = Brick("eval tiny-demo --device cuda:0" + data);
  const testing::CmdResult profile = Brick("profile tiny-demo --device cuda:0 --save p --data " + Path("data.ids"));
  if (gpus_ == 0) {
    for (const testing::CmdResult* r : {&gpu, &profile}) {
      EXPECT_EQ(r->code, 1);
      EXPECT_NE(r->err.find("cuda:0"), std::string::npos) << r->err;
      EXPECT_EQ(r->err.find('\n'), r->err.size() - 1) << "one line: " << r->err;
    }
    return;
  }
  ASSERT_EQ(gpu.code, 0) << gpu.err;
  EXPECT_EQ(profile.code, 0) << profile.err;
  auto a = ParseJson(cpu.out), b = ParseJson(gpu.out);
  ASSERT_TRUE(a.ok() && b.ok()) << cpu.out << gpu.out;
  const double want = a->Find("perplexity")->as_double(), got = b->Find("perplexity")->as_double();
  EXPECT_NEAR(got, want, 1e-4 * want);
}

// brick compose says where a spec would run, with no device or node touched, and refuses a placement
// that cannot run.
TEST_F(DeviceCliTest, ComposeShowsThePlacement) {
  std::ofstream(Path("mixed.yaml")) << "model: tiny-demo\nplacement:\n  device: cuda:0\n  nodes: {cloud: {endpoint: "
                                       "\"tcp://127.0.0.1:1\"}}\n  rules:\n    - {match: \"L0.mlp.E1\", on: cpu}\n"
                                       "    - {match: \"L1.mlp.E*\", on: cloud}\n";
  testing::CmdResult r = Brick("compose " + Path("mixed.yaml"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("placement: the model on cuda:0; MLP experts elsewhere: 1 on cpu, 6 on cloud"),
            std::string::npos)
      << r.out;
  r = Brick("compose " + Path("mixed.yaml") + " --json");
  ASSERT_EQ(r.code, 0) << r.err;
  auto json = ParseJson(r.out);
  ASSERT_TRUE(json.ok()) << r.out;
  const JsonValue* placement = json->Find("placement");
  ASSERT_NE(placement, nullptr) << r.out;
  EXPECT_EQ(placement->Find("device")->as_string(), "cuda:0");
  EXPECT_EQ(*placement->Find("mlp_experts_elsewhere")->Find("cloud")->as_int64(), 6);
  std::ofstream(Path("torn.yaml")) << "model: tiny-demo\nplacement:\n  rules: [{match: \"L0.attn.*\", on: cuda:0}]\n";
  r = Brick("compose " + Path("torn.yaml"));
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("run on one device for now"), std::string::npos) << r.err;
}

TEST_F(DeviceCliTest, BadDevicesAreUsageErrors) {
  testing::CmdResult r = Run("tiny-demo --device gpu");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--device must be cpu or cuda:N"), std::string::npos) << r.err;
  EXPECT_EQ(Brick("eval tiny-demo --device cuda --data x.ids").code, 1);  // "cuda" is cuda:0; the data is missing
  EXPECT_EQ(Brick("eval tiny-demo --device tpu:0 --data x.ids").code, 2);
  r = Brick("run --server tcp://127.0.0.1:1 --device cuda:0 --tokens 1");
  EXPECT_EQ(r.code, 2);
  std::ofstream(Path("torn.yaml")) << "model: tiny-demo\nplacement:\n  rules: [{match: \"L0.attn.*\", on: cuda:0}]\n";
  r = Run(Path("torn.yaml"));
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("run on one device for now"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace brickrt
