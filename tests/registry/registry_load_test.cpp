// Loading bricks back from the registry: byte-identical tensors, a model that computes the same
// logits, the golden reference checkpoints, shared storage for tied heads, and corrupt payloads.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "bricks/model.h"
#include "bricks/session.h"
#include "core/thread_pool.h"
#include "registry/hf_checkpoint.h"
#include "registry/registry.h"
#include "registry_test_util.h"

namespace brickrt {
namespace {

using testing::OpenOrDie;
using testing::RawDb;

// Logits of every position of one prompt, from a model built from these bricks.
std::vector<float> Logits(const ModelConfig& cfg, std::vector<BrickData> bricks, const std::vector<int32_t>& prompt) {
  auto model = Model::Build(cfg, std::move(bricks));
  EXPECT_TRUE(model.ok()) << model.status().ToString();
  if (!model.ok()) return {};
  const auto T = static_cast<int64_t>(prompt.size());
  Session session(*model, SessionOptions{1, T, T}, nullptr);
  auto seq = session.AddSequence();
  EXPECT_TRUE(seq.ok());
  std::vector<float> logits(static_cast<size_t>(T * cfg.vocab_size));
  const SequenceChunk chunk{*seq, prompt};
  EXPECT_TRUE(session.Forward({&chunk, 1}, true, logits.data()).ok());
  return logits;
}

Result<std::vector<BrickData>> LoadModel(const Registry& reg, const std::string& ref, ModelConfig* cfg) {
  BRICK_ASSIGN_OR_RETURN(ManifestRecord m, reg.ResolveModel(ref));
  *cfg = m.config;
  return reg.LoadBricks(m);
}

TEST(RegistryLoad, LoadedBricksEqualTheImportedOnesAndComputeTheSameLogits) {
  for (DType dt : {DType::kBF16, DType::kF16, DType::kF32}) {
    auto [cfg, bricks] = testing::SmallModel(dt);
    auto reg = OpenOrDie(":memory:");
    ASSERT_TRUE(reg->Import("m", cfg, bricks, Visibility::kShared, "").ok());
    ModelConfig got_cfg;
    auto loaded = LoadModel(*reg, "m", &got_cfg);
    ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
    testing::ExpectSameBricks(bricks, *loaded);
    const std::vector<int32_t> prompt = {1, 7, 42, 3, 49, 0, 18};
    const std::vector<float> want = Logits(cfg, bricks, prompt);
    const std::vector<float> got = Logits(got_cfg, std::move(loaded).value(), prompt);
    ASSERT_EQ(want.size(), got.size());
    EXPECT_EQ(std::memcmp(want.data(), got.data(), want.size() * sizeof(float)), 0) << DTypeName(dt);
  }
}

TEST(RegistryLoad, TiedHeadIsStoredOnceAndLoadedAsSharedStorage) {
  TestModelOptions o = testing::SmallModelOptions();
  o.tie_word_embeddings = true;
  auto model = MakeRandomModel(o);
  ASSERT_TRUE(model.ok());
  auto reg = OpenOrDie(":memory:");
  auto r = reg->Import("tied", model->first, model->second, Visibility::kShared, "");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const int64_t embed_bytes = static_cast<int64_t>(model->second.front().nbytes());
  EXPECT_EQ(r->new_blob_bytes, testing::PayloadBytes(model->second) - embed_bytes);
  EXPECT_EQ(reg->GetBrick("tied/embed")->digest, reg->GetBrick("tied/lm_head")->digest);
  auto loaded = reg->LoadBricks(r->manifest);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  testing::ExpectSameBricks(model->second, *loaded);
  EXPECT_EQ(loaded->front().tensors[0].second.data(), loaded->back().tensors[0].second.data());
  EXPECT_EQ(loaded->back().kind, BrickKind::kLmHead);
}

TEST(RegistryLoad, EveryManifestVersionLoadsItsOwnBricks) {
  auto [cfg, bricks] = testing::SmallModel();
  auto changed = bricks;
  Tensor t = changed[4].tensors[0].second.Clone();  // an attention expert of layer 0
  static_cast<uint8_t*>(t.mutable_data())[0] ^= 1;
  changed[4].tensors[0].second = t;
  auto reg = OpenOrDie(":memory:");
  ASSERT_TRUE(reg->Import("m", cfg, bricks, Visibility::kShared, "").ok());
  ASSERT_TRUE(reg->Import("m", cfg, changed, Visibility::kShared, "").ok());
  ModelConfig c;
  auto v1 = LoadModel(*reg, "m@1", &c);
  auto v2 = LoadModel(*reg, "m@2", &c);
  ASSERT_TRUE(v1.ok() && v2.ok());
  testing::ExpectSameBricks(bricks, *v1);
  testing::ExpectSameBricks(changed, *v2);
}

class RegistryGoldenTest : public ::testing::TestWithParam<std::string> {};

// The checkpoints written by the independent NumPy reference (tests/reference/data; regenerate with
// /usr/bin/python3 tests/reference/make_golden.py --out tests/reference/data) survive the registry.
TEST_P(RegistryGoldenTest, ImportedCheckpointLoadsIdenticallyAndRunsTheSame) {
  const std::string dir = std::string(BRICK_SOURCE_DIR) + "/tests/reference/data/" + GetParam();
  auto ckpt = LoadHfCheckpoint(dir);
  ASSERT_TRUE(ckpt.ok()) << ckpt.status().ToString();
  auto reg = OpenOrDie(":memory:");
  auto r = reg->Import(GetParam(), ckpt->config, ckpt->bricks, Visibility::kShared, dir);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->manifest.config.n_mlp_experts, ckpt->config.n_mlp_experts);
  EXPECT_EQ(r->manifest.config.vocab_size, ckpt->config.vocab_size);
  EXPECT_EQ(r->manifest.config.tie_word_embeddings, ckpt->config.tie_word_embeddings);
  EXPECT_FLOAT_EQ(r->manifest.config.layer_norm_eps, ckpt->config.layer_norm_eps);
  auto loaded = reg->LoadBricks(r->manifest);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  testing::ExpectSameBricks(ckpt->bricks, *loaded);
  const std::vector<int32_t> prompt = {5, 17, 2, 30, 11};
  const std::vector<float> want = Logits(ckpt->config, ckpt->bricks, prompt);
  const std::vector<float> got = Logits(r->manifest.config, std::move(loaded).value(), prompt);
  ASSERT_EQ(want.size(), got.size());
  EXPECT_EQ(std::memcmp(want.data(), got.data(), want.size() * sizeof(float)), 0);
}

INSTANTIATE_TEST_SUITE_P(Reference, RegistryGoldenTest, ::testing::Values("bf16", "f32", "ragged"));

class RegistryCorruptionTest : public testing::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    path_ = Path("r.db");
    std::tie(cfg_, bricks_) = testing::SmallModel();
    ASSERT_TRUE(OpenOrDie(path_)->Import("m", cfg_, bricks_, Visibility::kShared, "").ok());
  }
  std::string path_;
  ModelConfig cfg_;
  std::vector<BrickData> bricks_;
};

TEST_F(RegistryCorruptionTest, FlippedPayloadByteFailsTheLoadNamingTheBrick) {
  std::string digest;
  {
    auto reg = OpenOrDie(path_);
    digest = reg->GetBrick("m/L1.mlp.E3")->digest;
  }
  RawDb(path_).FlipBlobByte(digest, 100);
  auto reg = OpenOrDie(path_);
  auto m = reg->ResolveModel("m");
  ASSERT_TRUE(m.ok());
  auto loaded = reg->LoadBricks(*m);
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), StatusCode::kCorrupt);
  const std::string& msg = loaded.status().message();
  EXPECT_EQ(msg.rfind("brick m/L1.mlp.E3@1: payload digest mismatch (stored " + digest + ", computed ", 0), 0u) << msg;
  EXPECT_NE(msg.find("run `brick verify`, then re-import the model"), std::string::npos) << msg;

  // VerifyBrick finds exactly that brick; the others are intact and still load.
  int bad = 0;
  auto all = reg->ListBricks({});
  ASSERT_TRUE(all.ok());
  for (const BrickRecord& b : *all) {
    Status st = reg->VerifyBrick(b);
    if (!st.ok()) {
      ++bad;
      EXPECT_EQ(b.name, "m/L1.mlp.E3");
      EXPECT_EQ(st.code(), StatusCode::kCorrupt);
    } else {
      EXPECT_TRUE(reg->LoadBrick(b).ok()) << b.Ref();
    }
  }
  EXPECT_EQ(bad, 1);

  // The repair the message names: re-importing the good checkpoint rewrites the damaged payload in
  // place (same digest, same brick version) and the model loads again.
  auto again = reg->Import("m", cfg_, bricks_, Visibility::kShared, "");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->repaired_blobs, 1);
  EXPECT_EQ(again->new_bricks, 0);
  EXPECT_FALSE(again->new_manifest);
  EXPECT_EQ(again->new_blob_bytes, reg->GetBrick("m/L1.mlp.E3")->bytes);
  auto repaired = reg->LoadBricks(*m);
  ASSERT_TRUE(repaired.ok()) << repaired.status().ToString();
  testing::ExpectSameBricks(bricks_, *repaired);
}

// Loads check the CRC-32C stored beside each blob. A damaged checksum row (payload intact) is told
// apart from a damaged payload, fails the load and `brick verify` alike, and re-import repairs it.
TEST_F(RegistryCorruptionTest, DamagedChecksumRowFailsTheLoadAndReimportRepairsIt) {
  std::string digest;
  {
    auto reg = OpenOrDie(path_);
    digest = reg->GetBrick("m/L2.attn.E1")->digest;
  }
  RawDb(path_).Exec("UPDATE blob_checksums SET crc32c = crc32c + 1 WHERE blob_id = "
                    "(SELECT id FROM blobs WHERE digest = '" + digest + "')");
  auto reg = OpenOrDie(path_);
  auto m = reg->ResolveModel("m");
  ASSERT_TRUE(m.ok());
  auto loaded = reg->LoadBricks(*m);
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), StatusCode::kCorrupt);
  const std::string& msg = loaded.status().message();
  EXPECT_EQ(msg.rfind("brick m/L2.attn.E1@1: stored payload checksum ", 0), 0u) << msg;
  EXPECT_NE(msg.find("digest intact"), std::string::npos) << msg;
  EXPECT_NE(msg.find("run `brick verify`, then re-import the model"), std::string::npos) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  auto b = reg->GetBrick("m/L2.attn.E1");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(reg->VerifyBrick(*b).code(), StatusCode::kCorrupt);

  auto again = reg->Import("m", cfg_, bricks_, Visibility::kShared, "");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->repaired_blobs, 1);
  EXPECT_TRUE(reg->VerifyBrick(*b).ok());
  auto repaired = reg->LoadBricks(*m);
  ASSERT_TRUE(repaired.ok()) << repaired.status().ToString();
  testing::ExpectSameBricks(bricks_, *repaired);
}

// A flipped payload byte is caught by the CRC on load for every brick, wherever the byte is (first,
// middle or last byte; tensors of a brick read in separate calls).
TEST_F(RegistryCorruptionTest, CrcCatchesAFlippedByteAnywhereInThePayload) {
  auto reg0 = OpenOrDie(path_);
  auto all = reg0->ListBricks({});
  ASSERT_TRUE(all.ok());
  reg0.reset();
  for (const BrickRecord& b : *all) {
    for (int64_t at : {int64_t{0}, b.bytes / 2, b.bytes - 1}) {
      RawDb(path_).FlipBlobByte(b.digest, static_cast<int>(at));
      {
        auto reg = OpenOrDie(path_);
        auto got = reg->LoadBrick(b);
        ASSERT_FALSE(got.ok()) << b.Ref() << " byte " << at;
        EXPECT_EQ(got.status().code(), StatusCode::kCorrupt);
        EXPECT_EQ(got.status().message().rfind("brick " + b.Ref() + ": payload digest mismatch", 0), 0u)
            << got.status().message();
      }
      RawDb(path_).FlipBlobByte(b.digest, static_cast<int>(at));  // undo
    }
    if (b.name == "m/L0.mlp.E2") break;  // enough bricks of every early kind; keeps the test short
  }
}

// A blob whose checksum row is gone (the load cannot use the CRC) is verified by SHA-256 instead.
TEST_F(RegistryCorruptionTest, BlobWithoutChecksumFallsBackToTheDigest) {
  std::string digest;
  {
    auto reg = OpenOrDie(path_);
    digest = reg->GetBrick("m/L1.mlp.E0")->digest;
  }
  RawDb(path_).Exec("DELETE FROM blob_checksums WHERE blob_id = (SELECT id FROM blobs WHERE digest = '" + digest + "')");
  {
    auto reg = OpenOrDie(path_);
    auto b = reg->GetBrick("m/L1.mlp.E0");
    ASSERT_TRUE(b.ok());
    EXPECT_TRUE(reg->LoadBrick(*b).ok());
  }
  RawDb(path_).FlipBlobByte(digest, 5);
  auto reg = OpenOrDie(path_);
  auto b = reg->GetBrick("m/L1.mlp.E0");
  ASSERT_TRUE(b.ok());
  auto got = reg->LoadBrick(*b);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().message().rfind("brick m/L1.mlp.E0@1: payload digest mismatch (stored " + digest, 0), 0u)
      << got.status().message();
}

TEST_F(RegistryCorruptionTest, MissingBlobIsCorruptNamingTheBrick) {
  std::string digest;
  {
    auto reg = OpenOrDie(path_);
    digest = reg->GetBrick("m/ln_f")->digest;
  }
  {
    RawDb raw(path_);
    raw.Exec("PRAGMA foreign_keys = OFF");
    raw.Exec("DELETE FROM blobs WHERE digest = '" + digest + "'");
  }
  auto reg = OpenOrDie(path_);
  auto b = reg->GetBrick("m/ln_f");
  ASSERT_TRUE(b.ok());
  auto loaded = reg->LoadBrick(*b);
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), StatusCode::kCorrupt);
  EXPECT_NE(loaded.status().message().find("brick m/ln_f@1"), std::string::npos) << loaded.status().message();
  EXPECT_NE(loaded.status().message().find("missing"), std::string::npos) << loaded.status().message();
}

TEST_F(RegistryCorruptionTest, DamagedTensorRecordIsCorruptNotACrash) {
  {
    RawDb raw(path_);
    raw.Exec(
        "UPDATE brick_tensors SET shape = '[4611686018427387904,4]' WHERE ord = 0 AND brick_id = "
        "(SELECT id FROM bricks WHERE name = 'm/L2.mlp.E1')");
  }
  auto reg = OpenOrDie(path_);
  auto m = reg->ResolveModel("m");
  ASSERT_TRUE(m.ok());
  auto loaded = reg->LoadBricks(*m);
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), StatusCode::kCorrupt);
  EXPECT_NE(loaded.status().message().find("brick m/L2.mlp.E1@1"), std::string::npos) << loaded.status().message();
}

TEST_F(RegistryCorruptionTest, VerificationCanBeTurnedOffForMeasurements) {
  std::string digest;
  {
    auto reg = OpenOrDie(path_);
    digest = reg->GetBrick("m/L0.attn.E0")->digest;
  }
  RawDb(path_).FlipBlobByte(digest, 0);
  OpenOptions trust;
  trust.verify_on_load = false;
  auto reg = OpenOrDie(path_, trust);
  auto b = reg->GetBrick("m/L0.attn.E0");
  ASSERT_TRUE(b.ok());
  EXPECT_TRUE(reg->LoadBrick(*b).ok());
  EXPECT_EQ(reg->VerifyBrick(*b).code(), StatusCode::kCorrupt);  // verify always checks
}

// A process killed in the middle of an import leaves the registry exactly as it was: the import is
// one transaction, and WAL recovery drops the uncommitted frames on the next open.
TEST_F(RegistryCorruptionTest, ImportKilledMidwayLeavesTheRegistryAsItWas) {
  TestModelOptions o = testing::SmallModelOptions(DType::kF32, /*seed=*/3);
  o.d_model = 256;
  o.ffd_hidden = 1024;  // ~36 MB of payload: the import takes long enough to be caught mid-way
  auto big = MakeRandomModel(o);
  ASSERT_TRUE(big.ok());
  const std::string wal = path_ + "-wal";
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto reg = Registry::Open(path_);
    if (reg.ok()) (void)(*reg)->Import("big", big->first, big->second, Visibility::kShared, "");
    _exit(0);
  }
  // Kill once the child has written a few MiB of uncommitted pages.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  std::error_code ec;
  while (std::chrono::steady_clock::now() < deadline) {
    const auto n = std::filesystem::file_size(wal, ec);
    if (!ec && n > (8u << 20)) break;
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  kill(child, SIGKILL);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  if (!WIFSIGNALED(status)) GTEST_SKIP() << "the import finished before it could be killed";

  auto reg = OpenOrDie(path_);
  auto models = reg->ListModels();
  ASSERT_TRUE(models.ok()) << models.status().ToString();
  ASSERT_EQ(models->size(), 1u);
  EXPECT_EQ((*models)[0].Ref(), "m@1");
  BrickFilter big_bricks{"big/*", std::nullopt, true};
  EXPECT_TRUE(reg->ListBricks(big_bricks)->empty());
  EXPECT_EQ(RawDb(path_).Int("SELECT count(*) FROM blobs"), static_cast<int64_t>(bricks_.size()));
  auto loaded = reg->LoadBricks((*models)[0]);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  testing::ExpectSameBricks(bricks_, *loaded);
  // And the registry takes the import afterwards.
  auto again = reg->Import("big", big->first, big->second, Visibility::kShared, "");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->new_bricks, static_cast<int>(big->second.size()));
}

}  // namespace
}  // namespace brickrt
