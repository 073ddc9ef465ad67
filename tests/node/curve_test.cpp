// ZeroMQ CURVE between a brick node and a coordinator over tcp on 127.0.0.1 (issue #5, DESIGN.md
// "Secure"): a client whose key is on the node's allow list connects and gets the same outputs as
// from a plain node; a client with another key, a client expecting another server key and a plain
// client get nothing (Connect times out) while the allowed one keeps being served; key files with
// the wrong length, characters or permissions are refused with clear errors.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "core/rng.h"
#include "node/brick_info.h"
#include "node/brick_server.h"
#include "node/curve_keys.h"
#include "node/remote_executor.h"
#include "node/split.h"
#include "node/submodel.h"
#include "registry/compose.h"
#include "registry/registry.h"
#include "registry/test_model.h"

namespace brickrt {
namespace {

namespace fs = std::filesystem;

class CurveTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ASSERT_TRUE(curve::Available()) << "libzmq without CURVE";
    path_ = new std::string(::testing::TempDir() + "/brick_curve_test_" + std::to_string(getpid()) + ".db");
    TestModelOptions o;
    o.layers = 2;
    o.d_model = 32;
    o.ffd_hidden = 48;
    o.gating_size = 16;
    o.vocab = 64;
    o.attn_experts_per_layer = {2, 2};
    o.mlp_experts_per_layer = {4, 4};
    o.dtype = DType::kBF16;
    o.seed = 5;
    auto made = MakeRandomModel(o);
    ASSERT_TRUE(made.ok()) << made.status().ToString();
    auto reg = Registry::Open(*path_);
    ASSERT_TRUE(reg.ok()) << reg.status().ToString();
    auto imported = (*reg)->Import("m", made->first, made->second, Visibility::kShared, "test");
    ASSERT_TRUE(imported.ok()) << imported.status().ToString();
    auto records = (*reg)->ManifestBricks(imported->manifest);
    ASSERT_TRUE(records.ok());
    layer0_ = new std::vector<wire::BrickInfo>();
    for (const BrickRecord& r : *records) {
      if (r.kind == BrickKind::kMlpExpert && r.layer == 0) {
        layer0_->push_back(MlpBrickInfo(r));
      }
    }
  }
  static void TearDownTestSuite() {
    for (const char* suffix : {"", "-wal", "-shm"}) std::remove((*path_ + suffix).c_str());
    delete path_;
    delete layer0_;
  }

  static curve::KeyPair Keys() {
    auto k = curve::GenerateKeyPair();
    EXPECT_TRUE(k.ok()) << k.status().ToString();
    return k.ok() ? *k : curve::KeyPair{};
  }

  static std::unique_ptr<BrickServer> StartServer(std::optional<BrickServerOptions::Curve> c) {
    BrickServerOptions so;
    so.registry_path = *path_;
    so.listen = "tcp://127.0.0.1:*";
    so.serve = {"m/L*.mlp.E*"};
    so.name = "cloud";
    so.curve = std::move(c);
    auto server = BrickServer::Start(so);
    EXPECT_TRUE(server.ok()) << server.status().ToString();
    return server.ok() ? std::move(*server) : nullptr;
  }

  static std::unique_ptr<RemoteExecutor> Executor(const std::string& endpoint,
                                                  std::optional<RemoteExecutorOptions::Curve> c, int timeout_ms) {
    RemoteExecutorOptions eo;
    eo.endpoint = endpoint;
    eo.timeout_ms = timeout_ms;
    eo.node_name = "cloud";
    eo.bricks = *layer0_;
    eo.curve = std::move(c);
    auto ex = RemoteExecutor::Create(eo);
    EXPECT_TRUE(ex.ok()) << ex.status().ToString();
    return ex.ok() ? std::move(*ex) : nullptr;
  }

  // One call over every layer-0 expert, 2 rows each; the outputs.
  static Result<std::vector<float>> Call(RemoteExecutor& ex) {
    const int64_t D = 32;
    std::vector<int64_t> experts;
    std::vector<int32_t> counts;
    for (const wire::BrickInfo& b : *layer0_) {
      experts.push_back(b.index);
      counts.push_back(2);
    }
    std::sort(experts.begin(), experts.end());
    std::vector<float> rows(experts.size() * 2 * D), out(rows.size(), -1.0f);
    Rng rng(11);
    for (float& v : rows) v = static_cast<float>(rng.Uniform() * 2.0 - 1.0);
    const ExpertCall call{0, D, experts, counts, rows.data(), out.data()};
    BRICK_RETURN_IF_ERROR(ex.Start(call));
    BRICK_RETURN_IF_ERROR(ex.Finish());
    return out;
  }

  static std::string* path_;
  static std::vector<wire::BrickInfo>* layer0_;
};
std::string* CurveTest::path_ = nullptr;
std::vector<wire::BrickInfo>* CurveTest::layer0_ = nullptr;

TEST_F(CurveTest, AllowedClientIsServedOthersGetNothing) {
  const curve::KeyPair node = Keys(), allowed = Keys(), stranger = Keys();
  auto server = StartServer(BrickServerOptions::Curve{node.secret_key, {allowed.public_key}});
  ASSERT_NE(server, nullptr);
  auto plain_server = StartServer(std::nullopt);
  ASSERT_NE(plain_server, nullptr);

  auto good = Executor(server->endpoint(), RemoteExecutorOptions::Curve{node.public_key, allowed.public_key,
                                                                        allowed.secret_key}, 3000);
  ASSERT_NE(good, nullptr);
  ASSERT_TRUE(good->Connect().ok());
  EXPECT_EQ(good->welcome().name, "cloud");
  EXPECT_EQ(good->welcome().bricks.size(), server->bricks().size());
  auto secure_out = Call(*good);
  ASSERT_TRUE(secure_out.ok()) << secure_out.status().ToString();
  auto reference = Executor(plain_server->endpoint(), std::nullopt, 3000);
  ASSERT_TRUE(reference->Connect().ok());
  auto plain_out = Call(*reference);
  ASSERT_TRUE(plain_out.ok()) << plain_out.status().ToString();
  EXPECT_EQ(*secure_out, *plain_out);  // bit for bit: encryption changes nothing of the payload

  // A key not on the list: the handshake fails, nothing is delivered, Connect times out.
  auto bad = Executor(server->endpoint(), RemoteExecutorOptions::Curve{node.public_key, stranger.public_key,
                                                                       stranger.secret_key}, 300);
  Status st = bad->Connect();
  EXPECT_EQ(st.code(), StatusCode::kUnavailable) << st.ToString();
  EXPECT_NE(st.message().find("allow list"), std::string::npos) << st.message();
  // The right client key but another server key (a node impersonated, or the wrong key file).
  auto wrong_server = Executor(server->endpoint(), RemoteExecutorOptions::Curve{stranger.public_key,
                                                                                allowed.public_key,
                                                                                allowed.secret_key}, 300);
  EXPECT_EQ(wrong_server->Connect().code(), StatusCode::kUnavailable);
  // A plain client: the mechanisms do not match, nothing is delivered.
  auto plain = Executor(server->endpoint(), std::nullopt, 300);
  EXPECT_EQ(plain->Connect().code(), StatusCode::kUnavailable);
  // A second refusal of the same key (logged once) changes nothing.
  EXPECT_EQ(bad->Connect().code(), StatusCode::kUnavailable);

  // The allowed client keeps being served, on its open connection and on a new one.
  auto again = Call(*good);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(*again, *plain_out);
  auto fresh = Executor(server->endpoint(), RemoteExecutorOptions::Curve{node.public_key, allowed.public_key,
                                                                         allowed.secret_key}, 3000);
  ASSERT_TRUE(fresh->Connect().ok());
}

TEST_F(CurveTest, BadOptionsAreRefused) {
  const curve::KeyPair node = Keys(), client = Keys();
  BrickServerOptions so;
  so.registry_path = *path_;
  so.listen = "tcp://127.0.0.1:*";
  so.serve = {"m/L*.mlp.E*"};
  so.curve = BrickServerOptions::Curve{node.secret_key, {}};
  auto s1 = BrickServer::Start(so);
  ASSERT_FALSE(s1.ok());
  EXPECT_EQ(s1.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s1.status().message().find("allowed client key"), std::string::npos) << s1.status().message();
  so.curve = BrickServerOptions::Curve{"short", {client.public_key}};
  auto s2 = BrickServer::Start(so);
  ASSERT_FALSE(s2.ok());
  EXPECT_NE(s2.status().message().find("40 Z85 characters"), std::string::npos) << s2.status().message();

  RemoteExecutorOptions eo;
  eo.endpoint = "tcp://127.0.0.1:1";
  eo.curve = RemoteExecutorOptions::Curve{node.public_key, client.public_key, std::string(40, '"')};
  auto ex = RemoteExecutor::Create(eo);
  ASSERT_FALSE(ex.ok());
  EXPECT_NE(ex.status().message().find("secret key"), std::string::npos) << ex.status().message();
  EXPECT_NE(ex.status().message().find("Z85 alphabet"), std::string::npos) << ex.status().message();
}

// A spec's placement with server_key/client_key: PlanSplit connects over CURVE; a client key the
// node does not allow fails the plan with Unavailable; a missing key file names the spec key.
TEST_F(CurveTest, PlacementKeysConnectOverCurve) {
  const fs::path dir = fs::path(::testing::TempDir()) / ("brick_curve_spec_" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const curve::KeyPair node = Keys(), coord = Keys(), other = Keys();
  ASSERT_TRUE(curve::WriteKeyPair((dir / "node.key").string(), node).ok());
  ASSERT_TRUE(curve::WriteKeyPair((dir / "coord.key").string(), coord).ok());
  ASSERT_TRUE(curve::WriteKeyPair((dir / "other.key").string(), other).ok());
  auto server = StartServer(BrickServerOptions::Curve{node.secret_key, {coord.public_key}});
  ASSERT_NE(server, nullptr);
  auto reg = Registry::Open(*path_);
  ASSERT_TRUE(reg.ok());
  const auto plan = [&](const std::string& client_key, const std::string& server_key) -> Result<std::vector<std::string>> {
    const std::string yaml = "model: m\nplacement:\n  nodes:\n    cloud: {endpoint: \"" + server->endpoint() +
                             "\", timeout_ms: 2000, server_key: " + server_key + ", client_key: " + client_key +
                             "}\n  rules:\n    - {match: \"L*.mlp.E*\", on: cloud}\n";
    BRICK_ASSIGN_OR_RETURN(SubmodelSpec spec, ParseSubmodelSpec(yaml, (dir / "spec.yaml").string()));
    BRICK_ASSIGN_OR_RETURN(Composition c, Compose(**reg, spec));
    BRICK_ASSIGN_OR_RETURN(LoadedModel loaded, LoadComposition(**reg, c));
    BRICK_ASSIGN_OR_RETURN(std::unique_ptr<SplitPlan> p, PlanSplit(c, loaded.model));
    return p->nodes;
  };
  auto ok = plan("coord.key", "node.pub");  // relative to the spec file
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(*ok, (std::vector<std::string>{"cloud"}));
  auto refused = plan("other.key", "node.pub");
  EXPECT_EQ(refused.status().code(), StatusCode::kUnavailable) << refused.status().ToString();
  auto missing = plan("coord.key", "nope.pub");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound) << missing.status().ToString();
  EXPECT_NE(missing.status().message().find("placement.nodes.cloud.server_key"), std::string::npos)
      << missing.status().message();
  fs::remove_all(dir);
}

class CurveKeyFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) / ("brick_curve_keys_" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Write(const std::string& name, const std::string& text, fs::perms perms) {
    const fs::path p = dir_ / name;
    std::ofstream(p) << text;
    fs::permissions(p, perms);
    return p.string();
  }
  fs::path dir_;
};

TEST_F(CurveKeyFileTest, WriteThenReadRoundTrips) {
  auto keys = curve::GenerateKeyPair();
  ASSERT_TRUE(keys.ok());
  const std::string secret = (dir_ / "node.key").string();
  ASSERT_TRUE(curve::WriteKeyPair(secret, *keys).ok());
  EXPECT_EQ(curve::PublicKeyPathFor(secret), (dir_ / "node.pub").string());
  EXPECT_EQ(fs::status(secret).permissions() & fs::perms::all, fs::perms::owner_read | fs::perms::owner_write);
  auto s = curve::ReadSecretKey(secret);
  auto p = curve::ReadPublicKey((dir_ / "node.pub").string());
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(*s, keys->secret_key);
  EXPECT_EQ(*p, keys->public_key);
  auto derived = curve::PublicKeyOf(*s);
  ASSERT_TRUE(derived.ok());
  EXPECT_EQ(*derived, *p);
  // Never overwritten.
  const Status again = curve::WriteKeyPair(secret, *keys);
  EXPECT_EQ(again.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(again.message().find("exists already"), std::string::npos) << again.message();
}

TEST_F(CurveKeyFileTest, BadKeyFilesAreRefusedClearly) {
  auto keys = curve::GenerateKeyPair();
  ASSERT_TRUE(keys.ok());
  const auto rw = fs::perms::owner_read | fs::perms::owner_write;
  auto missing = curve::ReadPublicKey((dir_ / "nope.pub").string());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("nope.pub does not exist"), std::string::npos);
  auto short_key = curve::ReadPublicKey(Write("short.pub", keys->public_key.substr(0, 39) + "\n", rw));
  EXPECT_EQ(short_key.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(short_key.status().message().find("found 39 characters"), std::string::npos)
      << short_key.status().message();
  std::string bad = keys->public_key;
  bad[7] = '"';
  auto not_z85 = curve::ReadPublicKey(Write("bad.pub", bad + "\n", rw));
  EXPECT_EQ(not_z85.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(not_z85.status().message().find("character 8 is outside the Z85 alphabet"), std::string::npos)
      << not_z85.status().message();
  auto two = curve::ReadPublicKey(Write("two.pub", keys->public_key + "\n" + keys->public_key + "\n", rw));
  EXPECT_EQ(two.status().code(), StatusCode::kInvalidArgument);
  // A secret key others may read is refused; the same file private is fine.
  const std::string open_secret = Write("open.key", keys->secret_key + "\n", rw | fs::perms::group_read |
                                                                             fs::perms::others_read);
  auto refused = curve::ReadSecretKey(open_secret);
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("chmod 600"), std::string::npos) << refused.status().message();
  fs::permissions(open_secret, rw);
  EXPECT_TRUE(curve::ReadSecretKey(open_secret).ok());
}

}  // namespace
}  // namespace brickrt
