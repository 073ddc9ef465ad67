// LoadHfCheckpoint on damaged checkpoints: one test per kind of damage, each built by writing a good
// random checkpoint and then corrupting it; asserts the status code and that the message names the
// file / tensor and says what was expected and what was found.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "core/json.h"
#include "registry/hf_checkpoint.h"
#include "registry/safetensors.h"
#include "registry/test_model.h"
#include "small_model.h"
#include "test_files.h"

namespace brickrt {
namespace {

using testing::Member;
using testing::ReadBytes;
using testing::RewriteHeader;
using testing::WriteBytes;

class MalformedCheckpointTest : public testing::TempDirTest {
 protected:
  // 3 layers, D = 32, F = 48, G = 16, V = 50, attention experts {4, 3, 5}, MLP experts {6, 4, 5}, BF16.
  void WriteGood(uint64_t max_shard_bytes = 0) {
    TestModelOptions o = testing::SmallModelOptions(DType::kBF16, /*seed=*/1);
    WriteOptions w;
    w.max_shard_bytes = max_shard_bytes;
    ckpt_ = Path("ckpt");
    ASSERT_TRUE(MakeTestModel(ckpt_, o, w).ok());
    ASSERT_TRUE(LoadHfCheckpoint(ckpt_).ok());  // the starting point is good
  }
  std::string File() const { return ckpt_ + "/model.safetensors"; }
  std::string Config() const { return ckpt_ + "/config.json"; }

  // Loads and checks code and message fragments.
  void ExpectError(StatusCode code, const std::vector<std::string>& needles) {
    auto r = LoadHfCheckpoint(ckpt_);
    ASSERT_FALSE(r.ok()) << "loaded a malformed checkpoint";
    EXPECT_EQ(r.status().code(), code) << r.status().ToString();
    for (const std::string& n : needles)
      EXPECT_NE(r.status().message().find(n), std::string::npos) << "'" << n << "' not in: " << r.status().message();
  }
  std::string ckpt_;
};

TEST_F(MalformedCheckpointTest, MissingDirectory) {
  ckpt_ = Path("does-not-exist");
  ExpectError(StatusCode::kNotFound, {"does-not-exist", "checkpoint directory does not exist"});
}

TEST_F(MalformedCheckpointTest, MissingConfigJson) {
  WriteGood();
  std::filesystem::remove(Config());
  ExpectError(StatusCode::kNotFound, {ckpt_ + "/config.json", "not found"});
}

TEST_F(MalformedCheckpointTest, MissingModelFile) {
  WriteGood();
  std::filesystem::remove(File());
  ExpectError(StatusCode::kNotFound, {ckpt_, "no model.safetensors or model.safetensors.index.json"});
}

TEST_F(MalformedCheckpointTest, MissingShard) {
  WriteGood(/*max_shard_bytes=*/16 * 1024);
  std::string shard;
  for (const auto& e : std::filesystem::directory_iterator(ckpt_))
    if (e.path().filename().string().rfind("model-00002-of-", 0) == 0) shard = e.path().filename().string();
  ASSERT_FALSE(shard.empty());
  std::filesystem::remove(ckpt_ + "/" + shard);
  ExpectError(StatusCode::kNotFound, {shard, "listed in model.safetensors.index.json does not exist"});
}

TEST_F(MalformedCheckpointTest, TruncatedFile) {
  WriteGood();
  const std::string b = ReadBytes(File());
  WriteBytes(File(), b.substr(0, b.size() - 100));
  ExpectError(StatusCode::kCorrupt, {"model.safetensors", "tensor 'lm_head.weight'", "past the end", "truncated"});
}

TEST_F(MalformedCheckpointTest, HeaderLengthLargerThanFile) {
  WriteGood();
  const std::string b = ReadBytes(File());
  WriteBytes(File(), testing::WithHeaderLength(b, b.size() + 1));
  ExpectError(StatusCode::kCorrupt, {"model.safetensors", "header length " + std::to_string(b.size() + 1),
                                     "larger than the file allows (" + std::to_string(b.size() - 8) + " bytes"});
}

TEST_F(MalformedCheckpointTest, InvalidJsonHeader) {
  WriteGood();
  std::string b = ReadBytes(File());
  const size_t colon = b.find(':', 8);
  b[colon] = ';';
  WriteBytes(File(), b);
  ExpectError(StatusCode::kCorrupt, {"model.safetensors", "invalid JSON header", "line 1:", "expected ':', found ';'"});
}

TEST_F(MalformedCheckpointTest, OffsetsPastTheEnd) {
  WriteGood();
  RewriteHeader(File(), [](JsonValue& h) {
    auto& offs = Member(Member(h, "lm_head.weight"), "data_offsets").mutable_array();
    offs[0] = JsonValue::Int(*offs[0].as_int64() + 64);
    offs[1] = JsonValue::Int(*offs[1].as_int64() + 64);
  });
  ExpectError(StatusCode::kCorrupt,
              {"model.safetensors", "tensor 'lm_head.weight'", "go past the end of the data section"});
}

TEST_F(MalformedCheckpointTest, OverlappingOffsets) {
  WriteGood();
  RewriteHeader(File(), [](JsonValue& h) {
    auto& offs = Member(Member(h, "transformer.h.0.ln_1.bias"), "data_offsets").mutable_array();
    offs[0] = JsonValue::Int(*offs[0].as_int64() - 2);
    offs[1] = JsonValue::Int(*offs[1].as_int64() - 2);
  });
  ExpectError(StatusCode::kCorrupt, {"model.safetensors", "tensor 'transformer.h.0.ln_1.bias'",
                                     "overlap tensor 'transformer.h.0.ln_1.weight'"});
}

TEST_F(MalformedCheckpointTest, MissingTensor) {
  WriteGood();
  RewriteHeader(File(), [](JsonValue& h) {  // renamed, so the data section stays tiled
    for (auto& [k, v] : h.mutable_object())
      if (k == "transformer.h.1.ln_2.bias") k = "transformer.h.1.ln_2.bias_renamed";
  });
  ExpectError(StatusCode::kNotFound, {"tensor 'transformer.h.1.ln_2.bias' not found in", "model.safetensors"});
}

TEST_F(MalformedCheckpointTest, WrongShape) {
  WriteGood();
  RewriteHeader(File(), [](JsonValue& h) {  // [E, D, F] -> [E, F, D]: same bytes, transposed meaning (spec G1)
    Member(h, "transformer.h.2.mlpf.experts.weight")
        .Set("shape", JsonValue::MakeArray({JsonValue::Int(5), JsonValue::Int(48), JsonValue::Int(32)}));
  });
  ExpectError(StatusCode::kCorrupt, {"model.safetensors: tensor 'transformer.h.2.mlpf.experts.weight': "
                                     "expected shape [5, 32, 48], found [5, 48, 32]"});
}

TEST_F(MalformedCheckpointTest, RouterRowsDisagreeWithExpertCount) {
  WriteGood();
  RewriteHeader(File(), [](JsonValue& h) {  // [E, G] = [3, 16] -> [16, 3]
    Member(h, "transformer.h.1.attn.q_proj.gate.w_gate.3.weight")
        .Set("shape", JsonValue::MakeArray({JsonValue::Int(16), JsonValue::Int(3)}));
  });
  ExpectError(StatusCode::kCorrupt, {"tensor 'transformer.h.1.attn.q_proj.gate.w_gate.3.weight'",
                                     "expected shape [3, 16], found [16, 3]", "3 experts in"});
}

TEST_F(MalformedCheckpointTest, UnsupportedDtypeF64Embedding) {
  WriteGood();
  RewriteHeader(File(), [](JsonValue& h) {  // same bytes: [50, 32] BF16 == [50, 8] F64
    auto& wte = Member(h, "transformer.wte.weight");
    wte.Set("dtype", JsonValue::String("F64"));
    wte.Set("shape", JsonValue::MakeArray({JsonValue::Int(50), JsonValue::Int(8)}));
  });
  ExpectError(StatusCode::kUnsupported,
              {"model.safetensors: tensor 'transformer.wte.weight'", "dtype F64", "expected one of BF16, F16, F32"});
}

TEST_F(MalformedCheckpointTest, UnsupportedDtypeI32Weight) {
  WriteGood();
  RewriteHeader(File(), [](JsonValue& h) {  // [32] BF16 == [16] I32
    auto& w = Member(h, "transformer.h.0.ln_1.weight");
    w.Set("dtype", JsonValue::String("I32"));
    w.Set("shape", JsonValue::MakeArray({JsonValue::Int(16)}));
  });
  ExpectError(StatusCode::kUnsupported, {"tensor 'transformer.h.0.ln_1.weight'", "dtype I32, expected BF16"});
}

TEST_F(MalformedCheckpointTest, ConfigDisagreesWithTensors) {
  WriteGood();
  testing::EditJsonFile(Config(), "n_embd", JsonValue::Int(64));
  testing::EditJsonFile(Config(), "att_hidden", JsonValue::Int(64));
  ExpectError(StatusCode::kCorrupt, {"model.safetensors: tensor 'transformer.wte.weight'",
                                     "expected shape [50, 64], found [50, 32]", "config.json"});
}

TEST_F(MalformedCheckpointTest, KAttAboveExpertsInALayer) {
  WriteGood();
  testing::EditJsonFile(Config(), "k_att", JsonValue::Int(4));  // layer 1 has only 3 attention experts
  ExpectError(StatusCode::kCorrupt,
              {"layer 1 has 3 attention experts", "transformer.h.1.attn.q_proj.experts.weight", "k_att = 4"});
}

TEST_F(MalformedCheckpointTest, UnsupportedConfigTwoHeads) {
  WriteGood();
  testing::EditJsonFile(Config(), "n_head", JsonValue::Int(2));
  ExpectError(StatusCode::kUnsupported, {"config.json", "n_head 2", "n_head = 1 and att_hidden = n_embd"});
}

TEST_F(MalformedCheckpointTest, InvalidConfigJson) {
  WriteGood();
  WriteBytes(Config(), "{\"model_type\": \"moduleformer\",\n \"n_layer\": 3,,}");
  ExpectError(StatusCode::kInvalidArgument, {"config.json", "invalid JSON", "line 2:15"});
}

TEST_F(MalformedCheckpointTest, ShardIndexPointsAtWrongShard) {
  WriteGood(/*max_shard_bytes=*/16 * 1024);
  const std::string index = ckpt_ + "/model.safetensors.index.json";
  auto parsed = ParseJson(ReadBytes(index));
  ASSERT_TRUE(parsed.ok());
  JsonValue v = parsed.value();
  auto& map = Member(v, "weight_map");
  const std::string other = Member(map, "lm_head.weight").as_string();
  map.Set("transformer.wte.weight", JsonValue::String(other));
  WriteBytes(index, DumpJson(v));
  ExpectError(StatusCode::kCorrupt,
              {"model.safetensors.index.json", "'transformer.wte.weight'", other, "does not contain it"});
}

TEST_F(MalformedCheckpointTest, UnknownExtraTensorIsOnlyAWarning) {
  WriteGood(/*max_shard_bytes=*/16 * 1024);
  // An extra shard with a tensor brickrt does not know, listed in the index.
  float x[2] = {1, 2};
  ASSERT_TRUE(WriteSafetensors(ckpt_ + "/extra.safetensors",
                               {{"transformer.h.0.attn.k_proj.bias", StDType::kF32, {2}, {{x, 8}}}})
                  .ok());
  const std::string index = ckpt_ + "/model.safetensors.index.json";
  auto parsed = ParseJson(ReadBytes(index));
  ASSERT_TRUE(parsed.ok());
  JsonValue v = parsed.value();
  Member(v, "weight_map").Set("transformer.h.0.attn.k_proj.bias", JsonValue::String("extra.safetensors"));
  WriteBytes(index, DumpJson(v));
  auto r = LoadHfCheckpoint(ckpt_);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
}

}  // namespace
}  // namespace brickrt
