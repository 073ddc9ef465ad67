// brick grow end to end: a checkpoint shrunk by two MLP experts, imported, then grown by exactly those
// experts runs (`brick run NAME`) with the full model's logits to the last bit; --json lists what was
// added; specs compose the grown model; every error is one line on stderr and leaves the registry as it was.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "brick_runner.h"
#include "core/json.h"
#include "registry/compact.h"
#include "registry/hf_checkpoint.h"
#include "registry/safetensors.h"
#include "registry/test_model.h"

namespace brickrt {
namespace {

namespace fs = std::filesystem;
using testing::CmdResult;

constexpr int kLayer = 2;

class GrowCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("brick_grow_cli_" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    reg_ = Path("r.db");
    TestModelOptions o;
    o.layers = 3;
    o.d_model = 32;
    o.ffd_hidden = 48;
    o.gating_size = 16;
    o.vocab = 60;
    o.mlp_experts_per_layer = {6, 4, 5};
    o.attn_experts_per_layer = {4, 3, 5};
    o.dtype = DType::kBF16;
    auto full = MakeRandomModel(o);
    ASSERT_TRUE(full.ok());
    const auto& [cfg, bricks] = *full;
    // The shrunk checkpoint: experts 3 and 4 of layer 2 deleted (router rows included).
    ModelConfig marked = cfg;
    marked.att_removed.assign(3, {});
    marked.mlp_removed.assign(3, {});
    marked.mlp_removed[kLayer] = {3, 4};
    std::vector<BrickData> kept;
    std::vector<StWriteTensor> experts(2);
    experts[0] = {"transformer.h.2.mlpf.experts.weight", FromDType(cfg.dtype), {2, 32, 48}, {}};
    experts[1] = {"transformer.h.2.mlpf.output_experts.weight", FromDType(cfg.dtype), {2, 48, 32}, {}};
    StWriteTensor router{"transformer.h.2.mlpf.gate.w_gate.3.weight", FromDType(cfg.dtype), {2, 16}, {}};
    for (const BrickData& b : bricks) {
      const bool removed = b.kind == BrickKind::kMlpExpert && b.layer == kLayer && b.index >= 3;
      if (removed) {
        experts[0].parts.emplace_back(b.tensors[0].second.data(), b.tensors[0].second.nbytes());
        experts[1].parts.emplace_back(b.tensors[1].second.data(), b.tensors[1].second.nbytes());
      } else {
        kept.push_back(b);
      }
      if (b.kind == BrickKind::kMlpRouter && b.layer == kLayer) {
        const Tensor& w2 = *b.Find("w2");
        const size_t row = static_cast<size_t>(w2.dim(1)) * DTypeSize(w2.dtype());
        router.parts.emplace_back(static_cast<const uint8_t*>(w2.data()) + 3 * row, 2 * row);
      }
    }
    ASSERT_TRUE(WriteSafetensors(Path("new.safetensors"), experts).ok());
    ASSERT_TRUE(WriteSafetensors(Path("router2.safetensors"), {router}).ok());
    auto small = CompactRemovedExperts(marked, kept);
    ASSERT_TRUE(small.ok()) << small.status().ToString();
    ASSERT_TRUE(WriteHfCheckpoint(Path("full"), cfg, bricks).ok());
    ASSERT_TRUE(WriteHfCheckpoint(Path("small"), small->first, small->second).ok());
    ASSERT_EQ(Brick("import " + Path("full") + " --name full").code, 0);
    ASSERT_EQ(Brick("import " + Path("small") + " --name small").code, 0);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Path(const std::string& name) const { return (dir_ / name).string(); }
  CmdResult Brick(const std::string& args) { return testing::RunBrick(args + " --registry " + reg_, dir_ / "io"); }
  std::string GrowArgs(const std::string& model, const std::string& name, int layer = kLayer,
                       const std::string& kind = "mlp") const {
    return "grow " + model + " --layer " + std::to_string(layer) + " --kind " + kind + " --experts " +
           Path("new.safetensors") + " --router " + Path("router2.safetensors") + " --save " + name;
  }
  // The prompt logits' bytes and the greedy continuation: equal means the same model to the last bit.
  std::string Run(const std::string& model) {
    const std::string npy = Path("logits.npy");
    fs::remove(npy);
    const CmdResult r = Brick("run " + model + " --tokens 5,17,42,8 -n 4 --temp 0 --json --dump-logits " + npy);
    EXPECT_EQ(r.code, 0) << r.err;
    std::stringstream logits;
    logits << std::ifstream(npy, std::ios::binary).rdbuf();
    EXPECT_GT(logits.str().size(), 128u);
    auto j = ParseJson(r.out);
    return j.ok() && j->Find("generated") ? DumpJson(*j->Find("generated")) + logits.str() : "";
  }
  std::string RegistryState() {
    const CmdResult a = Brick("ls --all-versions --json"), b = Brick("models --json");
    EXPECT_EQ(a.code, 0) << a.err;
    EXPECT_EQ(b.code, 0) << b.err;
    return a.out + b.out;
  }

  fs::path dir_;
  std::string reg_;
};

TEST_F(GrowCliTest, GrownModelRunsWithTheFullModelsLogitsAndJsonListsTheNewBricks) {
  const std::string full = Run("full");
  ASSERT_NE(full, Run("small"));

  CmdResult r = Brick(GrowArgs("small", "grown") + " --json");
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = ParseJson(r.out);
  ASSERT_TRUE(j.ok()) << r.out;
  EXPECT_EQ(j->Find("manifest")->as_string(), "grown@1");
  EXPECT_EQ(j->Find("base")->as_string(), "small@1");
  EXPECT_EQ(j->Find("experts_before")->as_int64(), 3);
  EXPECT_EQ(j->Find("experts_after")->as_int64(), 5);
  EXPECT_EQ(*j->Find("params_after")->as_int64() - *j->Find("params_before")->as_int64(), 2 * (2 * 32 * 48 + 16));
  const auto& added = j->Find("added")->as_array();
  ASSERT_EQ(added.size(), 3u);
  EXPECT_EQ(added[0].Find("ref")->as_string(), "grown/L2.mlp.E3@1");
  EXPECT_EQ(added[1].Find("ref")->as_string(), "grown/L2.mlp.E4@1");
  EXPECT_EQ(added[2].Find("ref")->as_string(), "grown/L2.mlp.router@1");
  EXPECT_EQ(added[2].Find("parent")->as_string(), "small/L2.mlp.router@1");
  // The new bricks are the full model's bricks, digest for digest.
  for (const char* part : {"L2.mlp.E3", "L2.mlp.E4", "L2.mlp.router"}) {
    const CmdResult s = Brick(std::string("show full/") + part + " --json");
    ASSERT_EQ(s.code, 0) << s.err;
    auto sj = ParseJson(s.out);
    ASSERT_TRUE(sj.ok());
    bool found = false;
    for (const JsonValue& a : added) found = found || a.Find("digest")->as_string() == sj->Find("digest")->as_string();
    EXPECT_TRUE(found) << part;
  }

  EXPECT_EQ(Run("grown"), full);
  r = Brick("models");
  EXPECT_NE(r.out.find("base small@1"), std::string::npos) << r.out;

  // Specs take the grown model, with expert ids up to its new count.
  std::ofstream(Path("spec.yaml")) << "model: grown\nexperts:\n  mlp:\n    drop: {2: [4]}\n";
  r = Brick("compose " + Path("spec.yaml"));
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("4/5 removed 4"), std::string::npos) << r.out;
  std::ofstream(Path("spec.yaml")) << "model: grown\nexperts:\n  mlp:\n    drop: {2: [5]}\n";
  r = Brick("compose " + Path("spec.yaml"));
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("out of range"), std::string::npos) << r.err;

  // Human output names the new manifest and each new brick.
  r = Brick(GrowArgs("small", "grown-b"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("grew small@1 layer 2: MLP experts 3 -> 5"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("grown-b/L2.mlp.router@1"), std::string::npos) << r.out;
}

TEST_F(GrowCliTest, EveryErrorIsOneLineAndChangesNothing) {
  ASSERT_EQ(Brick(GrowArgs("small", "grown")).code, 0);
  const std::string before = RegistryState();
  auto expect_error = [&](const std::string& args, const std::string& want, int code) {
    const CmdResult r = Brick(args);
    EXPECT_EQ(r.code, code) << args << "\n" << r.err;
    EXPECT_EQ(r.err.rfind("brick grow: error: ", 0), 0u) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_NE(r.err.find(want), std::string::npos) << r.err;
    EXPECT_EQ(RegistryState(), before) << args;
  };
  expect_error(GrowArgs("nope", "g2"), "nope", 1);
  expect_error(GrowArgs("small", "grown"), "--save name 'grown' is taken (grown@1, a model)", 1);
  expect_error(GrowArgs("small", "g2", 7), "layer 7 is out of range (small@1 has 3 layers, 0-2)", 1);
  expect_error("grow small --layer 2 --kind mlp --experts " + Path("new.safetensors") + " --router " +
                   Path("new.safetensors") + " --save g2",
               "new.safetensors: unexpected tensor transformer.h.2.mlpf.experts.weight", 1);
  expect_error(GrowArgs("small", "g2", 1), "tensor transformer.h.2.mlpf.experts.weight is not for layer 1 (--layer)",
               1);
  expect_error(GrowArgs("small", "g2", kLayer, "attn"), "use --kind mlp", 1);
  expect_error(GrowArgs("small", "g2", kLayer, "moe"), "--kind must be mlp or attn", 2);
  expect_error("grow small --layer 2 --kind mlp --experts x --router y", "--save is required", 2);
  EXPECT_EQ(Brick("grow --help").code, 0);
}

}  // namespace
}  // namespace brickrt
