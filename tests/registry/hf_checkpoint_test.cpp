// Round trips of registry/hf_checkpoint: random model -> WriteHfCheckpoint -> LoadHfCheckpoint gives
// the same config and byte-identical bricks (single file, sharded, each dtype, tied head), plus the
// checkpoints written by the independent NumPy reference (tests/reference/data).
#include "registry/hf_checkpoint.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <filesystem>

#include "core/json.h"
#include "registry/safetensors.h"
#include "registry/test_model.h"
#include "brick_compare.h"
#include "small_model.h"
#include "test_files.h"

namespace brickrt {
namespace {

// Seed 11: its own weights, independent of the other suites' models.
TestModelOptions SmallRagged(DType dtype) { return testing::SmallModelOptions(dtype, 11); }

using testing::ExpectSameBricks;

class HfCheckpointTest : public testing::TempDirTest {
 protected:
  void RoundTrip(const TestModelOptions& o, const WriteOptions& w) {
    auto model = MakeRandomModel(o);
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    const std::string dir = Path("ckpt");
    Status st = WriteHfCheckpoint(dir, model->first, model->second, w);
    ASSERT_TRUE(st.ok()) << st.ToString();
    auto loaded = LoadHfCheckpoint(dir);
    ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
    const ModelConfig& c = loaded->config;
    EXPECT_EQ(c.n_layer, o.layers);
    EXPECT_EQ(c.n_embd, o.d_model);
    EXPECT_EQ(c.att_hidden, o.d_model);
    EXPECT_EQ(c.ffd_hidden, o.ffd_hidden);
    EXPECT_EQ(c.gating_size, o.gating_size);
    EXPECT_EQ(c.vocab_size, o.vocab);
    EXPECT_EQ(c.k_att, o.k_att);
    EXPECT_EQ(c.k_mlp, o.k_mlp);
    EXPECT_EQ(c.n_att_experts, model->first.n_att_experts);  // per layer, from tensor shapes
    EXPECT_EQ(c.n_mlp_experts, model->first.n_mlp_experts);
    EXPECT_EQ(c.dtype, o.dtype);
    EXPECT_EQ(c.tie_word_embeddings, o.tie_word_embeddings);
    EXPECT_FLOAT_EQ(c.layer_norm_eps, 1e-5f);
    ExpectSameBricks(model->second, loaded->bricks);
    EXPECT_NE(loaded->description.find("3 layers"), std::string::npos) << loaded->description;
  }
};

TEST_F(HfCheckpointTest, SingleFileRoundTripWithPerLayerExpertCounts) {
  RoundTrip(SmallRagged(DType::kBF16), {});
  EXPECT_TRUE(std::filesystem::exists(Path("ckpt/model.safetensors")));
  EXPECT_FALSE(std::filesystem::exists(Path("ckpt/model.safetensors.index.json")));
  // config.json carries the maxima over layers, as the HF code expects.
  auto cfg = ParseJson(testing::ReadBytes(Path("ckpt/config.json")));
  ASSERT_TRUE(cfg.ok());
  EXPECT_EQ(cfg->Find("n_att_experts")->as_int64(), 5);
  EXPECT_EQ(cfg->Find("n_mlp_experts")->as_int64(), 6);
  EXPECT_EQ(cfg->Find("torch_dtype")->as_string(), "bfloat16");
}

TEST_F(HfCheckpointTest, ShardedRoundTrip) {
  WriteOptions w;
  w.max_shard_bytes = 16 * 1024;
  RoundTrip(SmallRagged(DType::kBF16), w);
  int shards = 0;
  for (const auto& e : std::filesystem::directory_iterator(Path("ckpt")))
    shards += e.path().filename().string().rfind("model-", 0) == 0;
  EXPECT_GT(shards, 2);
  EXPECT_FALSE(std::filesystem::exists(Path("ckpt/model.safetensors")));
  auto index = ParseJson(testing::ReadBytes(Path("ckpt/model.safetensors.index.json")));
  ASSERT_TRUE(index.ok());
  const JsonValue* map = index->Find("weight_map");
  ASSERT_NE(map, nullptr);
  char first[64];
  std::snprintf(first, sizeof first, "model-00001-of-%05d.safetensors", shards);
  EXPECT_EQ(map->Find("transformer.wte.weight")->as_string(), first);
  ASSERT_NE(index->Find("metadata"), nullptr);
  EXPECT_GT(*index->Find("metadata")->Find("total_size")->as_int64(), 0);
  // Rewriting as one file removes the stale index, so the loader cannot read old shards.
  auto model = MakeRandomModel(SmallRagged(DType::kBF16));
  ASSERT_TRUE(WriteHfCheckpoint(Path("ckpt"), model->first, model->second, {}).ok());
  EXPECT_FALSE(std::filesystem::exists(Path("ckpt/model.safetensors.index.json")));
  EXPECT_TRUE(LoadHfCheckpoint(Path("ckpt")).ok());
}

TEST_F(HfCheckpointTest, F16AndF32RoundTrip) {
  RoundTrip(SmallRagged(DType::kF16), {});
  std::filesystem::remove_all(Path("ckpt"));
  RoundTrip(SmallRagged(DType::kF32), {});
}

TEST_F(HfCheckpointTest, TiedEmbeddingsShareStorageAndOmitLmHead) {
  TestModelOptions o = SmallRagged(DType::kBF16);
  o.tie_word_embeddings = true;
  RoundTrip(o, {});
  auto f = SafetensorsFile::Open(Path("ckpt/model.safetensors"));
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->Find("lm_head.weight"), nullptr);
  auto loaded = LoadHfCheckpoint(Path("ckpt"));
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(loaded->bricks.back().kind, BrickKind::kLmHead);
  EXPECT_EQ(loaded->bricks.back().tensors[0].second.data(), loaded->bricks.front().tensors[0].second.data());
}

TEST_F(HfCheckpointTest, ExpertBricksAreSlicesOfTheStackedTensors) {
  auto model = MakeRandomModel(SmallRagged(DType::kBF16));
  ASSERT_TRUE(WriteHfCheckpoint(Path("ckpt"), model->first, model->second, {}).ok());
  auto f = SafetensorsFile::Open(Path("ckpt/model.safetensors"));
  ASSERT_TRUE(f.ok());
  const StTensorInfo* w1 = f->Find("transformer.h.1.mlpf.experts.weight");
  ASSERT_NE(w1, nullptr);
  EXPECT_EQ(w1->shape, (Shape{4, 32, 48}));  // [E, in, out], spec G1
  EXPECT_EQ(f->Find("transformer.h.1.mlpf.output_experts.weight")->shape, (Shape{4, 48, 32}));
  EXPECT_EQ(f->Find("transformer.h.2.attn.q_proj.gate.w_gate.3.weight")->shape, (Shape{5, 16}));
  for (const BrickData& b : model->second) {
    if (b.kind != BrickKind::kMlpExpert || b.layer != 1) continue;
    const Tensor& t = *b.Find("w1");
    std::vector<uint8_t> bytes(t.nbytes());
    ASSERT_TRUE(f->ReadBytes(*w1, static_cast<uint64_t>(b.index) * t.nbytes(), t.nbytes(), bytes.data()).ok());
    EXPECT_EQ(std::memcmp(bytes.data(), t.data(), t.nbytes()), 0) << "expert " << b.index;
  }
}

TEST_F(HfCheckpointTest, DeadBuffersAreWrittenAndSkipped) {
  auto model = MakeRandomModel(SmallRagged(DType::kBF16));
  WriteOptions w;
  w.dead_buffer_size = 5;
  ASSERT_TRUE(WriteHfCheckpoint(Path("ckpt"), model->first, model->second, w).ok());
  auto f = SafetensorsFile::Open(Path("ckpt/model.safetensors"));
  ASSERT_TRUE(f.ok());
  const StTensorInfo* mask = f->Find("transformer.h.0.attn.mask");
  const StTensorInfo* cum = f->Find("transformer.h.2.attn.cum_weight");
  ASSERT_NE(mask, nullptr);
  ASSERT_NE(cum, nullptr);
  EXPECT_EQ(mask->dtype, StDType::kI8);
  EXPECT_EQ(cum->dtype, StDType::kBF16);
  EXPECT_EQ(mask->shape, (Shape{5, 5}));
  int8_t m[25];
  uint16_t c[25];
  ASSERT_TRUE(f->ReadBytes(*mask, 0, 25, m).ok());
  ASSERT_TRUE(f->ReadBytes(*cum, 0, 50, c).ok());
  for (int r = 0; r < 5; ++r)
    for (int k = 0; k < 5; ++k) {
      EXPECT_EQ(m[r * 5 + k], k <= r ? 1 : 0);                         // lower triangle incl. diagonal
      EXPECT_EQ(c[r * 5 + k], k < r ? F32ToBf16(1.0f) : uint16_t{0});  // strictly lower
    }
  EXPECT_TRUE(LoadHfCheckpoint(Path("ckpt")).ok());
  w.write_dead_buffers = false;
  ASSERT_TRUE(WriteHfCheckpoint(Path("ckpt2"), model->first, model->second, w).ok());
  EXPECT_EQ(SafetensorsFile::Open(Path("ckpt2/model.safetensors"))->Find("transformer.h.0.attn.mask"), nullptr);
}

TEST_F(HfCheckpointTest, WriterRejectsMissingOrMisshapedBricks) {
  auto model = MakeRandomModel(SmallRagged(DType::kBF16));
  std::vector<BrickData> bricks = model->second;
  bricks.erase(bricks.begin() + 3);  // L0.attn.E0 (after embed, L0.ln1, L0.attn.router)
  Status st = WriteHfCheckpoint(Path("ckpt"), model->first, bricks, {});
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("missing brick L0.attn.E0"), std::string::npos) << st.message();
  bricks = model->second;
  bricks[1].tensors[0].second = Tensor(DType::kBF16, {31});
  st = WriteHfCheckpoint(Path("ckpt"), model->first, bricks, {});
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("L0.ln1 tensor 'weight': expected shape [32], found [31]"), std::string::npos)
      << st.message();
  bricks = model->second;
  bricks.push_back(bricks[3]);
  bricks.back().layer = 7;
  st = WriteHfCheckpoint(Path("ckpt"), model->first, bricks, {});
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("L7.attn.E0"), std::string::npos) << st.message();
  EXPECT_FALSE(std::filesystem::exists(Path("ckpt")));
}

// The NumPy reference (tests/reference/make_golden.py) writes its own safetensors files; loading them
// checks the reader against an independent writer, including F16, sharding and ragged layers.
TEST(HfCheckpointReference, LoadsCheckpointsWrittenByTheNumpyReference) {
  for (const char* name : {"bf16", "f32", "ragged"}) {
    const std::string dir = std::string(BRICK_SOURCE_DIR) + "/tests/reference/data/" + name;
    auto meta = ParseJson(testing::ReadBytes(dir + "/meta.json"));
    ASSERT_TRUE(meta.ok()) << dir;
    auto ckpt = LoadHfCheckpoint(dir);
    ASSERT_TRUE(ckpt.ok()) << ckpt.status().ToString();
    EXPECT_EQ(DTypeName(ckpt->config.dtype), meta->Find("weight_dtype")->as_string()) << name;
    const int64_t L = *meta->Find("n_layer")->as_int64();
    ASSERT_EQ(ckpt->config.n_layer, L);
    if (const JsonValue* per = meta->Find("att_experts_per_layer")) {
      for (int64_t i = 0; i < L; ++i) {
        EXPECT_EQ(ckpt->config.n_att_experts[static_cast<size_t>(i)],
                  *per->as_array()[static_cast<size_t>(i)].as_int64());
        EXPECT_EQ(ckpt->config.n_mlp_experts[static_cast<size_t>(i)],
                  *meta->Find("mlp_experts_per_layer")->as_array()[static_cast<size_t>(i)].as_int64());
      }
    }
    size_t experts = 0;
    for (const BrickData& b : ckpt->bricks)
      experts += b.kind == BrickKind::kAttnExpert || b.kind == BrickKind::kMlpExpert;
    int64_t want = 0;
    for (int64_t i = 0; i < L; ++i)
      want += ckpt->config.n_att_experts[static_cast<size_t>(i)] + ckpt->config.n_mlp_experts[static_cast<size_t>(i)];
    EXPECT_EQ(static_cast<int64_t>(experts), want);
  }
}

}  // namespace
}  // namespace brickrt
