// ReadPeftAdapter on small adapters written with the safetensors writer: both expert forms, lm_head,
// rsLoRA and pattern alphas, BF16 and F32; then one test per kind of malformed adapter, asserting the
// status code and that the one-line message names the file and the key. Last, MakeRandomLoras ->
// WritePeftAdapter -> ReadPeftAdapter gives the same bricks back, in both forms.
#include "registry/peft_adapter.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "brick_compare.h"
#include "core/json.h"
#include "registry/safetensors.h"
#include "registry/test_model.h"
#include "small_model.h"
#include "test_files.h"

namespace brickrt {
namespace {

using testing::WriteBytes;

constexpr char kP[] = "base_model.model.transformer.h.";

// Values that differ per element and per tensor, exactly representable in BF16.
Tensor Filled(DType dt, Shape shape, int seed) {
  std::vector<float> v(static_cast<size_t>(NumElements(shape)));
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(static_cast<int>((i * 7 + seed * 13) % 31) - 15) / 64;
  Tensor t = Tensor::Uninitialized(dt, std::move(shape));
  ConvertFromF32(v.data(), v.size(), dt, t.mutable_data());
  return t;
}

bool SameBytes(const Tensor& t, const void* p, size_t n) { return t.nbytes() == n && std::memcmp(t.data(), p, n) == 0; }

class PeftAdapterTest : public testing::TempDirTest {
 protected:
  // Base: 3 layers, D = A = 32, F = 48, V = 50, attention experts {4, 3, 5}, MLP experts {6, 4, 5}.
  void SetUp() override {
    TempDirTest::SetUp();
    base_ = testing::SmallModel().first;
    dir_a_ = Path("adapter");
    std::filesystem::create_directories(dir_a_);
    config_ = ParseJson(R"({"peft_type": "LORA", "r": 4, "lora_alpha": 8, "bias": "none", "fan_in_fan_out": false,
      "use_dora": false, "use_rslora": false, "modules_to_save": null, "rank_pattern": {}, "alpha_pattern": {},
      "target_modules": ["experts", "output_experts", "lm_head"], "task_type": "CAUSAL_LM",
      "base_model_name_or_path": "molm-test"})")
                  .value();
  }

  void Add(const std::string& key, Tensor t) { tensors_.emplace_back(key, std::move(t)); }
  // A pair for `module` (no prefix) with rank r: A [lead..., r, in], B [lead..., out, r].
  void AddPair(const std::string& module, Shape lead, int64_t r, int64_t in, int64_t out, DType dt = DType::kBF16,
               const std::string& adapter = "") {
    const std::string seg = adapter.empty() ? "" : "." + adapter;
    Shape sa = lead, sb = lead;
    sa.insert(sa.end(), {r, in});
    sb.insert(sb.end(), {out, r});
    const int seed = static_cast<int>(tensors_.size());
    Add("base_model.model." + module + ".lora_A" + seg + ".weight", Filled(dt, sa, seed));
    Add("base_model.model." + module + ".lora_B" + seg + ".weight", Filled(dt, sb, seed + 1));
  }
  const Tensor& Get(const std::string& key) const {
    for (const auto& [k, t] : tensors_)
      if (k == key) return t;
    ADD_FAILURE() << "no tensor " << key;
    return tensors_.front().second;
  }

  void Write() {
    WriteBytes(dir_a_ + "/adapter_config.json", DumpJson(config_, 2));
    std::vector<StWriteTensor> st;
    for (const auto& [k, t] : tensors_) st.push_back({k, FromDType(t.dtype()), t.shape(), {{t.data(), t.nbytes()}}});
    ASSERT_TRUE(WriteSafetensors(dir_a_ + "/adapter_model.safetensors", st).ok());
  }

  std::vector<BrickData> ReadOk() {
    Write();
    auto r = ReadPeftAdapter(dir_a_, base_);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::move(r).value() : std::vector<BrickData>{};
  }

  // Writes the adapter, reads it and checks the code, that the message is one line and holds needles.
  void ExpectError(StatusCode code, const std::vector<std::string>& needles, bool write = true) {
    if (write) Write();
    auto r = ReadPeftAdapter(dir_a_, base_);
    ASSERT_FALSE(r.ok()) << "read a malformed adapter";
    EXPECT_EQ(r.status().code(), code) << r.status().ToString();
    EXPECT_EQ(r.status().message().find('\n'), std::string::npos) << r.status().message();
    for (const std::string& n : needles)
      EXPECT_NE(r.status().message().find(n), std::string::npos) << "'" << n << "' not in: " << r.status().message();
  }
  std::string File() const { return dir_a_ + "/adapter_model.safetensors"; }
  std::string ConfigFile() const { return dir_a_ + "/adapter_config.json"; }

  ModelConfig base_;
  std::string dir_a_;
  JsonValue config_;
  std::vector<std::pair<std::string, Tensor>> tensors_;
};

float Alpha(const BrickData& b) { return b.Find("alpha")->data_as<float>()[0]; }

TEST_F(PeftAdapterTest, PerExpertFormAndLmHead) {
  AddPair("lm_head", {}, 4, 32, 50);
  AddPair("transformer.h.1.mlpf.output_experts.3", {}, 4, 48, 32);
  AddPair("transformer.h.0.attn.q_proj.experts.1", {}, 4, 32, 32);
  const std::vector<BrickData> bricks = ReadOk();
  ASSERT_EQ(bricks.size(), 3u);
  // Sorted: by layer, lm_head last.
  EXPECT_EQ(bricks[0].target, "L0.attn.E1.wq");
  EXPECT_EQ(bricks[1].target, "L1.mlp.E3.w2");
  EXPECT_EQ(bricks[2].target, "lm_head.weight");
  EXPECT_EQ(bricks[0].layer, 0);
  EXPECT_EQ(bricks[0].index, 1);
  EXPECT_EQ(bricks[1].layer, 1);
  EXPECT_EQ(bricks[1].index, 3);
  EXPECT_EQ(bricks[2].layer, -1);
  EXPECT_EQ(bricks[2].index, -1);
  for (const BrickData& b : bricks) {
    EXPECT_EQ(b.kind, BrickKind::kLora);
    EXPECT_EQ(b.Name(), b.target);
    ASSERT_EQ(b.tensors.size(), 3u);
    EXPECT_EQ(b.tensors[0].first, "a");
    EXPECT_EQ(b.tensors[1].first, "b");
    EXPECT_EQ(b.tensors[2].first, "alpha");
    EXPECT_EQ(b.Find("a")->dtype(), DType::kBF16);  // the file's dtype is kept
    EXPECT_EQ(b.Find("alpha")->dtype(), DType::kF32);
    EXPECT_EQ(Alpha(b), 8.0f);
  }
  EXPECT_EQ(bricks[1].Find("a")->shape(), (Shape{4, 48}));
  EXPECT_EQ(bricks[1].Find("b")->shape(), (Shape{32, 4}));
  EXPECT_EQ(bricks[2].Find("b")->shape(), (Shape{50, 4}));
  const Tensor& a = Get("base_model.model.transformer.h.1.mlpf.output_experts.3.lora_A.weight");
  const Tensor& b = Get("base_model.model.transformer.h.1.mlpf.output_experts.3.lora_B.weight");
  EXPECT_TRUE(SameBytes(*bricks[1].Find("a"), a.data(), a.nbytes()));
  EXPECT_TRUE(SameBytes(*bricks[1].Find("b"), b.data(), b.nbytes()));
}

TEST_F(PeftAdapterTest, StackedFormGivesOneBrickPerExpertF32) {
  AddPair("transformer.h.2.mlpf.experts", {5}, 4, 32, 48, DType::kF32);
  AddPair("transformer.h.0.attn.q_proj.output_experts", {4}, 4, 32, 32, DType::kF32);
  AddPair("transformer.h.2.attn.q_proj.experts.4", {}, 4, 32, 32, DType::kF32);  // forms mix across modules
  const std::vector<BrickData> bricks = ReadOk();
  ASSERT_EQ(bricks.size(), 4u + 1u + 5u);
  for (int e = 0; e < 4; ++e) EXPECT_EQ(bricks[static_cast<size_t>(e)].target, "L0.attn.E" + std::to_string(e) + ".wo");
  EXPECT_EQ(bricks[4].target, "L2.attn.E4.wq");  // attention before MLP within a layer
  const Tensor& a = Get("base_model.model.transformer.h.2.mlpf.experts.lora_A.weight");
  const Tensor& b = Get("base_model.model.transformer.h.2.mlpf.experts.lora_B.weight");
  for (int e = 0; e < 5; ++e) {
    const BrickData& br = bricks[static_cast<size_t>(5 + e)];
    EXPECT_EQ(br.target, "L2.mlp.E" + std::to_string(e) + ".w1");
    EXPECT_EQ(br.layer, 2);
    EXPECT_EQ(br.index, e);
    ASSERT_EQ(br.Find("a")->shape(), (Shape{4, 32}));
    ASSERT_EQ(br.Find("b")->shape(), (Shape{48, 4}));
    EXPECT_EQ(br.Find("a")->dtype(), DType::kF32);
    const size_t na = 4 * 32 * 4, nb = 48 * 4 * 4;  // one expert's slice
    EXPECT_TRUE(SameBytes(*br.Find("a"), a.data_as<uint8_t>() + static_cast<size_t>(e) * na, na)) << e;
    EXPECT_TRUE(SameBytes(*br.Find("b"), b.data_as<uint8_t>() + static_cast<size_t>(e) * nb, nb)) << e;
  }
}

TEST_F(PeftAdapterTest, AdapterNameSegmentIsAccepted) {
  AddPair("transformer.h.0.mlpf.experts.2", {}, 4, 32, 48, DType::kBF16, "default");
  const std::vector<BrickData> bricks = ReadOk();
  ASSERT_EQ(bricks.size(), 1u);
  EXPECT_EQ(bricks[0].target, "L0.mlp.E2.w1");
}

TEST_F(PeftAdapterTest, WqBeforeWoAndW1BeforeW2) {
  AddPair("transformer.h.1.mlpf.output_experts.0", {}, 4, 48, 32);
  AddPair("transformer.h.1.mlpf.experts.0", {}, 4, 32, 48);
  AddPair("transformer.h.1.attn.q_proj.output_experts.0", {}, 4, 32, 32);
  AddPair("transformer.h.1.attn.q_proj.experts.0", {}, 4, 32, 32);
  const std::vector<BrickData> bricks = ReadOk();
  ASSERT_EQ(bricks.size(), 4u);
  EXPECT_EQ(bricks[0].target, "L1.attn.E0.wq");
  EXPECT_EQ(bricks[1].target, "L1.attn.E0.wo");
  EXPECT_EQ(bricks[2].target, "L1.mlp.E0.w1");
  EXPECT_EQ(bricks[3].target, "L1.mlp.E0.w2");
}

TEST_F(PeftAdapterTest, RsLoraStoresAlphaTimesSqrtR) {
  config_.Set("use_rslora", JsonValue::Bool(true));
  AddPair("lm_head", {}, 4, 32, 50);
  const std::vector<BrickData> bricks = ReadOk();
  ASSERT_EQ(bricks.size(), 1u);
  EXPECT_EQ(Alpha(bricks[0]), 16.0f);  // scaling alpha / r = 8 / sqrt(4), as PEFT's rsLoRA
}

TEST_F(PeftAdapterTest, RankAndAlphaPatternsBySuffix) {
  config_.Set("rank_pattern", ParseJson(R"({"h.1.mlpf.output_experts.3": 2})").value());
  config_.Set("alpha_pattern", ParseJson(R"({"lm_head": 32, "mlpf.output_experts.3": 5.5})").value());
  AddPair("transformer.h.1.mlpf.output_experts.3", {}, 2, 48, 32);
  AddPair("transformer.h.2.mlpf.output_experts.3", {}, 4, 48, 32);
  AddPair("lm_head", {}, 4, 32, 50);
  const std::vector<BrickData> bricks = ReadOk();
  ASSERT_EQ(bricks.size(), 3u);
  EXPECT_EQ(bricks[0].Find("a")->shape(), (Shape{2, 48}));
  EXPECT_EQ(Alpha(bricks[0]), 5.5f);
  EXPECT_EQ(Alpha(bricks[1]), 5.5f);  // a suffix matches in every layer
  EXPECT_EQ(Alpha(bricks[2]), 32.0f);
}

TEST_F(PeftAdapterTest, RegexPatternKeyIsRefused) {
  config_.Set("rank_pattern", ParseJson(R"({"h\\.1\\..*experts": 2})").value());
  AddPair("lm_head", {}, 4, 32, 50);
  ExpectError(StatusCode::kUnsupported, {ConfigFile(), "rank_pattern", "regular expression"});
}

// ---- malformed adapters ----

TEST_F(PeftAdapterTest, MissingDirectoryAndFiles) {
  const std::string real = dir_a_;
  dir_a_ = Path("nope");
  ExpectError(StatusCode::kNotFound, {"nope", "does not exist"}, /*write=*/false);
  dir_a_ = real;
  ExpectError(StatusCode::kNotFound, {ConfigFile()}, /*write=*/false);
  AddPair("lm_head", {}, 4, 32, 50);
  Write();
  std::filesystem::remove(File());
  ExpectError(StatusCode::kNotFound, {File()}, /*write=*/false);
  WriteBytes(dir_a_ + "/adapter_model.bin", "pickle");
  ExpectError(StatusCode::kNotFound, {File(), "adapter_model.bin"}, /*write=*/false);
}

TEST_F(PeftAdapterTest, ConfigNotJson) {
  AddPair("lm_head", {}, 4, 32, 50);
  Write();
  WriteBytes(ConfigFile(), "{peft_type: LORA");
  ExpectError(StatusCode::kInvalidArgument, {ConfigFile(), "not valid JSON"}, /*write=*/false);
  WriteBytes(ConfigFile(), "[1, 2]");
  ExpectError(StatusCode::kInvalidArgument, {ConfigFile(), "JSON object"}, /*write=*/false);
}

TEST_F(PeftAdapterTest, BadPeftType) {
  config_.Set("peft_type", JsonValue::String("PREFIX_TUNING"));
  AddPair("lm_head", {}, 4, 32, 50);
  ExpectError(StatusCode::kUnsupported, {ConfigFile(), "peft_type", "PREFIX_TUNING"});
}

TEST_F(PeftAdapterTest, BadRankOrAlphaInConfig) {
  AddPair("lm_head", {}, 4, 32, 50);
  config_.Set("r", JsonValue::Number(2.5));
  ExpectError(StatusCode::kInvalidArgument, {ConfigFile(), "\"r\""});
  config_.Set("r", JsonValue::Int(4));
  config_.Set("lora_alpha", JsonValue::String("8"));
  ExpectError(StatusCode::kInvalidArgument, {ConfigFile(), "lora_alpha"});
}

TEST_F(PeftAdapterTest, UnsupportedOptions) {
  AddPair("lm_head", {}, 4, 32, 50);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"fan_in_fan_out", "true"},           {"use_dora", "true"},  {"bias", "\"all\""},
      {"modules_to_save", "[\"lm_head\"]"}, {"lora_bias", "true"}, {"layer_replication", "[[0, 2]]"}};
  for (const auto& [key, value] : cases) {
    SCOPED_TRACE(key);
    const JsonValue saved = config_;
    config_.Set(key, ParseJson(value).value());
    ExpectError(StatusCode::kUnsupported, {ConfigFile(), key});
    config_ = saved;
  }
}

TEST_F(PeftAdapterTest, MissingPair) {
  AddPair("lm_head", {}, 4, 32, 50);
  Add(std::string(kP) + "0.mlpf.experts.1.lora_A.weight", Filled(DType::kBF16, {4, 32}, 1));
  ExpectError(StatusCode::kCorrupt, {File(), "transformer.h.0.mlpf.experts.1.lora_A.weight", "lora_B"});
}

TEST_F(PeftAdapterTest, WrongShape) {
  AddPair("transformer.h.0.mlpf.experts.1", {}, 4, 31, 48);  // in must be D = 32
  ExpectError(StatusCode::kInvalidArgument, {File(), "experts.1.lora_A.weight", "[4, 31]", "[r, 32]"});
}

TEST_F(PeftAdapterTest, WrongExpertCountInStackedForm) {
  AddPair("transformer.h.1.attn.q_proj.experts", {4}, 4, 32, 32);  // layer 1 has 3 attention experts
  ExpectError(StatusCode::kInvalidArgument, {File(), "h.1.attn.q_proj.experts.lora_A.weight", "[3, r, 32]"});
}

TEST_F(PeftAdapterTest, RanksDisagree) {
  Add("base_model.model.lm_head.lora_A.weight", Filled(DType::kBF16, {4, 32}, 1));
  Add("base_model.model.lm_head.lora_B.weight", Filled(DType::kBF16, {50, 3}, 2));
  ExpectError(StatusCode::kCorrupt, {File(), "lm_head.lora_B.weight", "rank 3"});
}

TEST_F(PeftAdapterTest, RankDiffersFromConfig) {
  AddPair("lm_head", {}, 8, 32, 50);
  ExpectError(StatusCode::kInvalidArgument, {File(), "lm_head.lora_A.weight", "r = 4"});
}

TEST_F(PeftAdapterTest, LayerOutOfRange) {
  AddPair("transformer.h.3.mlpf.experts.0", {}, 4, 32, 48);
  ExpectError(StatusCode::kInvalidArgument, {File(), "transformer.h.3.mlpf.experts.0.lora_A.weight", "layer 3"});
}

TEST_F(PeftAdapterTest, ExpertOutOfRange) {
  AddPair("transformer.h.1.attn.q_proj.experts.3", {}, 4, 32, 32);  // layer 1: 3 attention experts
  ExpectError(StatusCode::kInvalidArgument, {File(), "h.1.attn.q_proj.experts.3.lora_A.weight", "expert 3"});
}

TEST_F(PeftAdapterTest, RemovedExpertOfBase) {
  base_.mlp_removed = {{}, {2}, {}};
  base_.att_removed = {{}, {}, {}};
  AddPair("transformer.h.1.mlpf.experts.2", {}, 4, 32, 48);
  ExpectError(StatusCode::kInvalidArgument, {File(), "h.1.mlpf.experts.2.lora_A.weight", "removed"});
}

TEST_F(PeftAdapterTest, UnknownKeys) {
  for (const std::string key :
       {"base_model.model.transformer.wte.lora_A.weight", "base_model.model.transformer.h.0.attn.k_proj.lora_A.weight",
        "base_model.model.transformer.h.0.mlpf.experts.1.lora_A.bias",
        "base_model.model.transformer.h.0.mlpf.experts.1.lora_magnitude_vector",
        "transformer.h.0.mlpf.experts.1.lora_A.weight",
        "base_model.model.transformer.h.01.mlpf.experts.1.lora_A.weight", "base_model.model.lm_head.0.lora_A.weight"}) {
    SCOPED_TRACE(key);
    tensors_.clear();
    AddPair("lm_head", {}, 4, 32, 50);
    Add(key, Filled(DType::kBF16, {4, 32}, 1));
    ExpectError(StatusCode::kInvalidArgument, {File(), "'" + key + "'"});
  }
}

TEST_F(PeftAdapterTest, DuplicateTargets) {
  AddPair("transformer.h.0.mlpf.experts", {6}, 4, 32, 48);
  AddPair("transformer.h.0.mlpf.experts.2", {}, 4, 32, 48);
  ExpectError(StatusCode::kInvalidArgument, {File(), "L0.mlp.E2.w1", "mlpf.experts.2.lora_A.weight"});
}

TEST_F(PeftAdapterTest, TwoAdapterNames) {
  AddPair("lm_head", {}, 4, 32, 50, DType::kBF16, "default");
  AddPair("transformer.h.0.mlpf.experts.1", {}, 4, 32, 48, DType::kBF16, "other");
  ExpectError(StatusCode::kInvalidArgument, {File(), "other", "default"});
}

TEST_F(PeftAdapterTest, NonFiniteValue) {
  AddPair("transformer.h.2.mlpf.output_experts", {5}, 4, 48, 32, DType::kF32);
  Tensor& b = tensors_.back().second;
  b.mutable_data_as<float>()[3 * 32 * 4 + 5] = std::numeric_limits<float>::quiet_NaN();  // expert 3
  ExpectError(StatusCode::kCorrupt, {File(), "output_experts.lora_B.weight", "expert 3", "NaN"});
}

TEST_F(PeftAdapterTest, UnsupportedDtype) {
  Add("base_model.model.lm_head.lora_A.weight", Filled(DType::kF32, {4, 32}, 1));
  std::vector<int32_t> ints(50 * 4, 1);
  Write();
  std::vector<StWriteTensor> st = {
      {"base_model.model.lm_head.lora_A.weight", StDType::kF32, {4, 32}, {{tensors_[0].second.data(), 4 * 32 * 4}}},
      {"base_model.model.lm_head.lora_B.weight", StDType::kI32, {50, 4}, {{ints.data(), ints.size() * 4}}}};
  ASSERT_TRUE(WriteSafetensors(File(), st).ok());
  ExpectError(StatusCode::kUnsupported, {File(), "lm_head.lora_B.weight", "I32"}, /*write=*/false);
}

TEST_F(PeftAdapterTest, EmptyAdapter) { ExpectError(StatusCode::kInvalidArgument, {File(), "no tensors"}); }

// ---- MakeRandomLoras and WritePeftAdapter ----

std::vector<BrickData> RandomLoras(const ModelConfig& base, const RandomLoraOptions& o) {
  auto r = MakeRandomLoras(base, o);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? std::move(r).value() : std::vector<BrickData>{};
}

std::vector<std::string> Targets(const std::vector<BrickData>& bricks) {
  std::vector<std::string> t;
  for (const BrickData& b : bricks) t.push_back(b.target);
  return t;
}

bool SameTensor(const Tensor& x, const Tensor& y) {
  return x.dtype() == y.dtype() && x.shape() == y.shape() && std::memcmp(x.data(), y.data(), x.nbytes()) == 0;
}

TEST_F(PeftAdapterTest, RandomLorasSelectTargetsDeterministically) {
  RandomLoraOptions o;
  o.rank = 4;
  const std::vector<BrickData> mlp = RandomLoras(base_, o);  // default: every MLP expert's w1 and w2
  ASSERT_EQ(mlp.size(), 2u * (6 + 4 + 5));
  EXPECT_EQ(mlp[0].target, "L0.mlp.E0.w1");
  EXPECT_EQ(mlp[1].target, "L0.mlp.E0.w2");
  EXPECT_EQ(mlp.back().target, "L2.mlp.E4.w2");
  for (const BrickData& b : mlp) {
    EXPECT_EQ(b.kind, BrickKind::kLora);
    EXPECT_EQ(b.Find("a")->dtype(), DType::kBF16);
    EXPECT_EQ(Alpha(b), 16.0f);
  }
  EXPECT_EQ(mlp[1].layer, 0);
  EXPECT_EQ(mlp[1].index, 0);
  EXPECT_EQ(mlp[1].Find("a")->shape(), (Shape{4, 48}));
  EXPECT_EQ(mlp[1].Find("b")->shape(), (Shape{32, 4}));

  o.targets = "L1.attn.E?.wq, lm_head.weight,L2.mlp.E3.w1";
  const std::vector<BrickData> some = RandomLoras(base_, o);
  EXPECT_EQ(Targets(some), (std::vector<std::string>{"L1.attn.E0.wq", "L1.attn.E1.wq", "L1.attn.E2.wq", "L2.mlp.E3.w1",
                                                     "lm_head.weight"}));
  EXPECT_EQ(some.back().Find("b")->shape(), (Shape{50, 4}));
  // A brick's bytes depend on the seed and its target only, not on what else is selected.
  EXPECT_TRUE(SameTensor(*some[3].Find("a"), *mlp[2 * (6 + 4 + 3)].Find("a")));
  EXPECT_TRUE(SameTensor(*some[3].Find("b"), *mlp[2 * (6 + 4 + 3)].Find("b")));
  EXPECT_FALSE(SameTensor(*some[0].Find("a"), *some[1].Find("a")));
  const std::vector<BrickData> again = RandomLoras(base_, o);
  for (size_t i = 0; i < some.size(); ++i) EXPECT_TRUE(SameTensor(*some[i].Find("b"), *again[i].Find("b")));
  o.seed = 2;
  EXPECT_FALSE(SameTensor(*some[0].Find("a"), *RandomLoras(base_, o)[0].Find("a")));

  // Scales: A ~ N(0, 1/in), B ~ 0.5·N(0, 1/r). Sampled from a few thousand values: within 10%.
  o.targets = "lm_head.weight";
  o.rank = 64;
  o.dtype = DType::kF32;
  const BrickData head = RandomLoras(base_, o).at(0);
  auto rms = [](const Tensor& t) {
    double s = 0;
    for (int64_t i = 0; i < t.numel(); ++i) s += static_cast<double>(t.data_as<float>()[i]) * t.data_as<float>()[i];
    return std::sqrt(s / static_cast<double>(t.numel()));
  };
  EXPECT_NEAR(rms(*head.Find("a")), 1 / std::sqrt(32.0), 0.1 / std::sqrt(32.0));
  EXPECT_NEAR(rms(*head.Find("b")), 0.5 / 8, 0.05 / 8);
}

TEST_F(PeftAdapterTest, RandomLorasSkipRemovedExperts) {
  base_.att_removed = {{}, {}, {}};
  base_.mlp_removed = {{}, {1, 3}, {}};
  RandomLoraOptions o;
  o.targets = "L1.mlp.*";
  EXPECT_EQ(Targets(RandomLoras(base_, o)),
            (std::vector<std::string>{"L1.mlp.E0.w1", "L1.mlp.E0.w2", "L1.mlp.E2.w1", "L1.mlp.E2.w2"}));
  o.targets = "L1.mlp.E3.*";
  auto r = MakeRandomLoras(base_, o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("removed"), std::string::npos) << r.status().message();
}

TEST_F(PeftAdapterTest, RandomLorasBadOptions) {
  RandomLoraOptions o;
  for (const char* globs : {"L9.mlp.*", "L0.mlp.E0.w1,mlp.*", "L0.attn.E0.w1"}) {
    SCOPED_TRACE(globs);
    o.targets = globs;
    auto r = MakeRandomLoras(base_, o);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    // Names the glob that selects nothing and shows what targets look like.
    const std::string glob = std::string(globs).substr(std::string(globs).rfind(',') + 1);
    EXPECT_NE(r.status().message().find("'" + glob + "'"), std::string::npos) << r.status().message();
    EXPECT_NE(r.status().message().find("L0.mlp.E0.w1"), std::string::npos) << r.status().message();
  }
  for (const char* globs : {"", "L0.mlp.E0.w1,,lm_head.weight", "lm_head.weight,"}) {
    SCOPED_TRACE(globs);
    o.targets = globs;
    auto r = MakeRandomLoras(base_, o);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find("empty glob"), std::string::npos) << r.status().message();
  }
  o.targets = "*";
  o.rank = 0;
  EXPECT_EQ(MakeRandomLoras(base_, o).status().code(), StatusCode::kInvalidArgument);
}

// Write, read back, compare byte for byte (same targets, layers, indices, tensors, alpha).
TEST_F(PeftAdapterTest, WritePeftAdapterRoundTrips) {
  for (const DType dt : {DType::kBF16, DType::kF32}) {
    for (const bool stacked : {false, true}) {
      SCOPED_TRACE(std::string(DTypeName(dt)) + (stacked ? " stacked" : " per-expert"));
      RandomLoraOptions o;
      o.targets = "*";  // every projection of every expert and the lm head
      o.rank = 3;
      o.alpha = 0.1f;  // not an integer: lora_alpha must come back as the same float
      o.dtype = dt;
      const std::vector<BrickData> loras = RandomLoras(base_, o);
      ASSERT_EQ(loras.size(), 2u * (4 + 3 + 5 + 6 + 4 + 5) + 1);
      const std::string dir = Path(std::string("rt-") + DTypeName(dt) + (stacked ? "-s" : "-p"));
      PeftWriteOptions w;
      w.stacked = stacked;
      w.base_model_name = "small@1";
      ASSERT_TRUE(WritePeftAdapter(dir, loras, base_, w).ok());
      auto back = ReadPeftAdapter(dir, base_);
      ASSERT_TRUE(back.ok()) << back.status().ToString();
      testing::ExpectSameBricks(loras, *back);
      for (size_t i = 0; i < loras.size(); ++i) {
        EXPECT_EQ((*back)[i].layer, loras[i].layer);
        EXPECT_EQ((*back)[i].index, loras[i].index);
      }

      // The form on disk: stacked [E, r, in] keys, or one key per expert.
      auto file = SafetensorsFile::Open(dir + "/adapter_model.safetensors");
      ASSERT_TRUE(file.ok()) << file.status().ToString();
      const StTensorInfo* a = file->Find(std::string(kP) + "2.mlpf.experts.lora_A.weight");
      const StTensorInfo* a4 = file->Find(std::string(kP) + "2.mlpf.experts.4.lora_A.weight");
      EXPECT_EQ(file->tensors().size(), stacked ? 2u * (4 * 3 + 1) : 2 * loras.size());
      EXPECT_EQ(a != nullptr, stacked);
      EXPECT_EQ(a4 != nullptr, !stacked);
      if (a != nullptr) {
        EXPECT_EQ(a->shape, (Shape{5, 3, 32}));
      }
      EXPECT_NE(file->Find("base_model.model.lm_head.lora_B.weight"), nullptr);
      auto cfg = ParseJson(testing::ReadBytes(dir + "/adapter_config.json"));
      ASSERT_TRUE(cfg.ok());
      EXPECT_EQ(cfg->Find("peft_type")->as_string(), "LORA");
      EXPECT_EQ(*cfg->Find("r")->as_int64(), 3);
      EXPECT_EQ(cfg->Find("base_model_name_or_path")->as_string(), "small@1");
      EXPECT_EQ(DumpJson(*cfg->Find("target_modules")),
                R"(["lm_head","mlpf.experts","mlpf.output_experts","q_proj.experts","q_proj.output_experts"])");
    }
  }
}

// A submodel base: the layer with removed experts falls back to per-expert keys in the stacked form,
// and the adapter reads back against the submodel.
TEST_F(PeftAdapterTest, WritePeftAdapterStackedSkipsLayersWithRemovedExperts) {
  base_.att_removed = {{}, {}, {}};
  base_.mlp_removed = {{}, {2}, {}};
  RandomLoraOptions o;
  o.targets = "L1.mlp.*,L2.mlp.*.w2";
  o.dtype = DType::kF32;
  const std::vector<BrickData> loras = RandomLoras(base_, o);
  ASSERT_EQ(loras.size(), 2u * 3 + 5);
  PeftWriteOptions w;
  w.stacked = true;
  ASSERT_TRUE(WritePeftAdapter(dir_a_, loras, base_, w).ok());
  auto back = ReadPeftAdapter(dir_a_, base_);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  testing::ExpectSameBricks(loras, *back);
  auto file = SafetensorsFile::Open(File());
  ASSERT_TRUE(file.ok());
  EXPECT_NE(file->Find(std::string(kP) + "1.mlpf.experts.3.lora_A.weight"), nullptr);
  EXPECT_NE(file->Find(std::string(kP) + "2.mlpf.output_experts.lora_B.weight"), nullptr);
}

TEST_F(PeftAdapterTest, WritePeftAdapterRefusesMixedRanksAndAlphas) {
  RandomLoraOptions o;
  o.targets = "L0.mlp.E0.w1";
  std::vector<BrickData> loras = RandomLoras(base_, o);
  o.targets = "L1.mlp.E0.w1";
  o.rank = 4;
  loras.push_back(RandomLoras(base_, o).at(0));
  Status st = WritePeftAdapter(Path("mixed"), loras, base_);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  for (const char* needle : {"L1.mlp.E0.w1", "rank 4", "L0.mlp.E0.w1", "one r and one lora_alpha"})
    EXPECT_NE(st.message().find(needle), std::string::npos) << needle << " not in: " << st.message();
  EXPECT_FALSE(std::filesystem::exists(Path("mixed"))) << "nothing is written on error";

  o.rank = 8;
  o.alpha = 32;
  loras.back() = RandomLoras(base_, o).at(0);
  st = WritePeftAdapter(Path("mixed"), loras, base_);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("lora_alpha"), std::string::npos) << st.message();
}

TEST_F(PeftAdapterTest, WritePeftAdapterRefusesBadInput) {
  RandomLoraOptions o;
  o.targets = "L0.mlp.E5.w1";
  const std::vector<BrickData> good = RandomLoras(base_, o);
  auto expect = [&](const std::vector<BrickData>& loras, const std::string& dir, const std::string& needle) {
    const Status st = WritePeftAdapter(dir, loras, base_);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.ToString();
    EXPECT_NE(st.message().find(needle), std::string::npos) << needle << " not in: " << st.message();
  };
  expect({}, Path("x"), "no loras");
  expect({good[0], good[0]}, Path("x"), "two loras");
  std::vector<BrickData> bad = good;
  bad[0].target = "L0.mlp.E5.w3";
  expect(bad, Path("x"), "L0.mlp.E5.w3");
  bad = good;
  bad[0].index = 4;
  expect(bad, Path("x"), "disagree");
  ModelConfig small = base_;
  small.n_mlp_experts[0] = 5;  // the lora is for expert 5
  EXPECT_EQ(WritePeftAdapter(Path("x"), good, small).code(), StatusCode::kInvalidArgument);
  small = base_;
  small.ffd_hidden = 40;
  EXPECT_EQ(WritePeftAdapter(Path("x"), good, small).code(), StatusCode::kInvalidArgument);
  bad = good;
  bad[0].tensors[1].second = good[0].tensors[1].second.Clone();      // copies share storage
  bad[0].tensors[1].second.mutable_data_as<uint16_t>()[7] = 0x7fc0;  // a BF16 NaN in b
  expect(bad, Path("x"), "NaN");
  EXPECT_FALSE(std::filesystem::exists(Path("x")));
  // An existing, non-empty directory is refused; an empty one is used.
  std::filesystem::create_directories(Path("full"));
  WriteBytes(Path("full") + "/keep.txt", "mine");
  expect(good, Path("full"), "not empty");
  std::filesystem::create_directories(Path("empty"));
  EXPECT_TRUE(WritePeftAdapter(Path("empty"), good, base_).ok());
}

}  // namespace
}  // namespace brickrt
