// brick import-lora end to end: a PEFT adapter (written here as plain bytes) becomes a plugin of an
// imported test model, listed by `brick models` and `brick ls`; re-importing adds nothing; a bad
// adapter or base is one line on stderr and leaves the registry as it was.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "brick_runner.h"
#include "core/json.h"

namespace brickrt {
namespace {

namespace fs = std::filesystem;

using testing::CmdResult;

struct F32Tensor {
  std::string key;
  std::vector<int64_t> shape;
};

// A minimal safetensors writer (F32 only, values i / 1000): the CLI tests link no registry code.
void WriteSafetensorsF32(const std::string& path, const std::vector<F32Tensor>& tensors) {
  JsonValue header = JsonValue::MakeObject();
  std::string data;
  for (const F32Tensor& t : tensors) {
    int64_t n = 1;
    JsonValue shape = JsonValue::MakeArray();
    for (int64_t d : t.shape) {
      n *= d;
      shape.Append(JsonValue::Int(d));
    }
    JsonValue info = JsonValue::MakeObject();
    info.Set("dtype", JsonValue::String("F32"));
    info.Set("shape", std::move(shape));
    JsonValue offsets = JsonValue::MakeArray();
    offsets.Append(JsonValue::Int(static_cast<int64_t>(data.size())));
    for (int64_t i = 0; i < n; ++i) {
      const float v = static_cast<float>(i % 97) / 1000.0f;
      data.append(reinterpret_cast<const char*>(&v), sizeof v);
    }
    offsets.Append(JsonValue::Int(static_cast<int64_t>(data.size())));
    info.Set("data_offsets", std::move(offsets));
    header.Set(t.key, std::move(info));
  }
  std::string json = DumpJson(header);
  json.append((8 - json.size() % 8) % 8, ' ');
  std::string len(8, '\0');
  for (int i = 0; i < 8; ++i)
    len[static_cast<size_t>(i)] = static_cast<char>(static_cast<uint64_t>(json.size()) >> (8 * i));
  std::ofstream(path, std::ios::binary) << len << json << data;
}

class ImportLoraCliTest : public testing::CliTest {
 protected:
  ImportLoraCliTest() : CliTest("brick_lora_cli_") {}

  void SetUp() override {
    const std::string model = (dir_ / "m").string();
    // D = 32, F = 48, V = 100; layer 1 has 5 MLP experts.
    CmdResult r = Brick("make-test-model " + model +
                            " --layers 2 --d-model 32 --ffd-hidden 48 --attn-experts 4 --mlp-experts 3,5 --vocab 100",
                        false);
    ASSERT_EQ(r.code, 0) << r.err;
    r = Brick("import " + model + " --name tiny");
    ASSERT_EQ(r.code, 0) << r.err;
  }

  // A rank-4 adapter: stacked L1 MLP up-projections (5 experts), attention expert 2 of layer 0 (wq) and
  // the lm head: 7 targets.
  std::string WriteAdapter(const std::string& name, const std::vector<F32Tensor>& extra = {}) {
    const fs::path d = dir_ / name;
    fs::create_directories(d);
    std::ofstream(d / "adapter_config.json")
        << R"({"peft_type": "LORA", "r": 4, "lora_alpha": 8, "bias": "none", "fan_in_fan_out": false,
               "modules_to_save": null, "target_modules": ["experts", "lm_head"], "task_type": "CAUSAL_LM"})";
    const std::string p = "base_model.model.";
    std::vector<F32Tensor> t = {
        {p + "transformer.h.1.mlpf.experts.lora_A.weight", {5, 4, 32}},
        {p + "transformer.h.1.mlpf.experts.lora_B.weight", {5, 48, 4}},
        {p + "transformer.h.0.attn.q_proj.experts.2.lora_A.weight", {4, 32}},
        {p + "transformer.h.0.attn.q_proj.experts.2.lora_B.weight", {32, 4}},
        {p + "lm_head.lora_A.weight", {4, 32}},
        {p + "lm_head.lora_B.weight", {100, 4}},
    };
    t.insert(t.end(), extra.begin(), extra.end());
    WriteSafetensorsF32((d / "adapter_model.safetensors").string(), t);
    return d.string();
  }

  // Everything a failed import must leave as it was.
  std::string Snapshot() {
    const CmdResult models = Brick("models --json"), bricks = Brick("ls --all-versions --json");
    EXPECT_EQ(models.code, 0) << models.err;
    EXPECT_EQ(bricks.code, 0) << bricks.err;
    return models.out + bricks.out;
  }
};

const JsonValue* FindByName(const JsonValue& arr, const std::string& name) {
  for (const JsonValue& v : arr.as_array())
    if (v.Find("name")->as_string() == name) return &v;
  return nullptr;
}

void ExpectOneLine(const CmdResult& r, const std::vector<std::string>& needles) {
  EXPECT_NE(r.code, 0);
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  for (const std::string& n : needles) EXPECT_NE(r.err.find(n), std::string::npos) << "'" << n << "' not in: " << r.err;
}

TEST_F(ImportLoraCliTest, ImportListReimport) {
  const std::string adapter = WriteAdapter("adapter");
  CmdResult r = Brick("import-lora " + adapter + " --name my-lora --base tiny --json");
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = ParseJson(r.out);
  ASSERT_TRUE(j.ok()) << r.out;
  EXPECT_EQ(j->Find("plugin")->as_string(), "my-lora@1");
  EXPECT_EQ(j->Find("base")->as_string(), "tiny@1");
  EXPECT_TRUE(j->Find("new_manifest")->as_bool());
  EXPECT_EQ(*j->Find("new_bricks")->as_int64(), 7);
  EXPECT_EQ(*j->Find("targets")->as_int64(), 7);
  EXPECT_EQ(DumpJson(*j->Find("ranks")), "[4]");
  // a + b F32 and alpha: 5 * (4*32 + 48*4) + (4*32 + 32*4) + (4*32 + 100*4) floats + 7 alphas.
  EXPECT_EQ(*j->Find("bytes")->as_int64(), 4 * (5 * (128 + 192) + 256 + 528 + 7));

  r = Brick("models --json");
  ASSERT_EQ(r.code, 0) << r.err;
  auto models = ParseJson(r.out);
  ASSERT_TRUE(models.ok()) << r.out;
  const JsonValue* plugin = FindByName(*models, "my-lora");
  const JsonValue* model = FindByName(*models, "tiny");
  ASSERT_NE(plugin, nullptr) << r.out;
  ASSERT_NE(model, nullptr) << r.out;
  EXPECT_EQ(plugin->Find("kind")->as_string(), "plugin");
  EXPECT_EQ(plugin->Find("base")->as_string(), "tiny@1");
  EXPECT_EQ(*plugin->Find("bricks")->as_int64(), 7);
  EXPECT_EQ(model->Find("kind")->as_string(), "model");
  EXPECT_TRUE(model->Find("base")->is_null());
  r = Brick("models");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("plugin"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("base tiny@1"), std::string::npos) << r.out;

  r = Brick("ls --kind lora --json");
  ASSERT_EQ(r.code, 0) << r.err;
  auto ls = ParseJson(r.out);
  ASSERT_TRUE(ls.ok()) << r.out;
  ASSERT_EQ(ls->as_array().size(), 7u);
  for (const char* name : {"my-lora/L0.attn.E2.wq", "my-lora/L1.mlp.E4.w1", "my-lora/lm_head.weight"}) {
    const JsonValue* b = FindByName(*ls, name);
    ASSERT_NE(b, nullptr) << name << " in " << r.out;
    EXPECT_EQ(b->Find("kind")->as_string(), "lora");
    EXPECT_EQ(b->Find("visibility")->as_string(), "shared");
  }
  EXPECT_EQ(*FindByName(*ls, "my-lora/L1.mlp.E4.w1")->Find("index")->as_int64(), 4);

  // The same adapter again: every brick reused, no new manifest or payload.
  r = Brick("import-lora " + adapter + " --name my-lora --base tiny@1 --json");
  ASSERT_EQ(r.code, 0) << r.err;
  j = ParseJson(r.out);
  ASSERT_TRUE(j.ok()) << r.out;
  EXPECT_FALSE(j->Find("new_manifest")->as_bool());
  EXPECT_EQ(*j->Find("new_bricks")->as_int64(), 0);
  EXPECT_EQ(*j->Find("reused_bricks")->as_int64(), 7);
  EXPECT_EQ(*j->Find("new_blob_bytes")->as_int64(), 0);
  EXPECT_EQ(j->Find("plugin")->as_string(), "my-lora@1");

  // Text output says what was stored.
  r = Brick("import-lora " + adapter + " --name other-lora --base tiny --private");
  ASSERT_EQ(r.code, 0) << r.err;
  for (const char* s : {"imported", "other-lora@1", "tiny@1", "7 targets", "rank 4"})
    EXPECT_NE(r.out.find(s), std::string::npos) << s << " not in: " << r.out;
  r = Brick("show other-lora/lm_head.weight --json");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("\"private\""), std::string::npos) << r.out;
}

TEST_F(ImportLoraCliTest, BadAdapterOrBaseLeavesRegistryUnchanged) {
  ASSERT_EQ(Brick("import-lora " + WriteAdapter("good") + " --name my-lora --base tiny").code, 0);
  const std::string before = Snapshot();

  // An expert the base does not have: layer 0 has 3 MLP experts.
  const std::string p = "base_model.model.transformer.h.0.mlpf.experts.3.";
  const std::string bad = WriteAdapter("bad", {{p + "lora_A.weight", {4, 32}}, {p + "lora_B.weight", {48, 4}}});
  ExpectOneLine(Brick("import-lora " + bad + " --name my-lora --base tiny"),
                {"adapter_model.safetensors", p + "lora_A.weight", "expert 3"});
  ExpectOneLine(Brick("import-lora " + bad + " --name new-lora --base tiny"), {"expert 3"});
  // An unknown key.
  const std::string unknown =
      WriteAdapter("unknown", {{"base_model.model.transformer.h.0.attn.k_proj.lora_A.weight", {4, 32}}});
  ExpectOneLine(Brick("import-lora " + unknown + " --name my-lora --base tiny"), {"attn.k_proj.lora_A.weight"});
  // A config that is not JSON.
  const std::string junk = WriteAdapter("junk");
  std::ofstream(fs::path(junk) / "adapter_config.json") << "peft_type: LORA";
  ExpectOneLine(Brick("import-lora " + junk + " --name my-lora --base tiny"), {"adapter_config.json", "JSON"});
  // Bad bases and arguments.
  const std::string good = (dir_ / "good").string();
  ExpectOneLine(Brick("import-lora " + good + " --name x --base nosuch"), {"nosuch"});
  ExpectOneLine(Brick("import-lora " + good + " --name x --base my-lora"), {"plugin", "not a model"});
  ExpectOneLine(Brick("import-lora " + good + " --name tiny --base tiny"), {"tiny", "already a model"});
  ExpectOneLine(Brick("import-lora " + good + " --name x"), {"--base"});
  ExpectOneLine(Brick("import-lora " + good + " --base tiny"), {"--name"});
  ExpectOneLine(Brick("import-lora " + (dir_ / "none").string() + " --name x --base tiny"), {"none"});
  EXPECT_EQ(Snapshot(), before);

  const CmdResult help = Brick("import-lora --help", false);
  EXPECT_EQ(help.code, 0);
  EXPECT_NE(help.out.find("--base"), std::string::npos) << help.out;
}

}  // namespace
}  // namespace brickrt
