// Brick versions on a node (issue #6): a new version imported while the node runs is loaded when a
// coordinator's Hello (or batch) asks for it and served next to the old one, each coordinator getting
// its own version's results; a version no live coordinator asks for is unloaded after the grace period
// (its memory released); private, unknown and corrupt versions are refused naming the brick, and the
// node keeps serving everything else. ServedBricks' keep/unload rule is tested on its own clock first.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <thread>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "bricks/experts.h"
#include "core/rng.h"
#include "node/brick_info.h"
#include "node/brick_server.h"
#include "node/remote_executor.h"
#include "node/served_bricks.h"
#include "registry/test_model.h"
#include "tests/registry/registry_test_util.h"

namespace brickrt {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

bool Contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// --- ServedBricks on a fake clock -------------------------------------------------------------------

ServedBrick FakeBrick(const std::string& name, const std::string& digest) {
  ServedBrick b;
  b.info = {name, digest, wire::ExpertKind::kMlp, 0, 0};
  b.version = 1;
  return b;
}

TEST(ServedBricksTest, KeepsPinnedWantedAndRecentlyUsedVersionsAndDropsTheRest) {
  ServedBricks t(10s);
  const Clock::time_point t0{};
  t.Add(FakeBrick("m/E0", "a"), t0);  // default
  t.Add(FakeBrick("m/E0", "b"), t0);  // a peer's
  t.Add(FakeBrick("m/E1", "c"), t0);  // only used by a batch
  t.Pin({{"m/E0", "a"}});
  t.SetPeerWants("peer", {{"m/E0", "b"}}, t0);
  EXPECT_TRUE(t.HasName("m/E0"));
  EXPECT_FALSE(t.HasName("m/E"));
  EXPECT_TRUE(t.Sweep(t0 + 9s).empty()) << "everything used within the grace period";
  ASSERT_NE(t.Find("m/E1", "c", t0 + 9s), nullptr);
  t.TouchPeer("peer", t0 + 15s);
  EXPECT_TRUE(t.Sweep(t0 + 15s).empty()) << "E1 used at 9 s";
  const std::vector<std::string> dropped = t.Sweep(t0 + 19s);
  ASSERT_EQ(dropped.size(), 1u);
  EXPECT_TRUE(Contains(dropped[0], "m/E1@1")) << dropped[0];
  // The peer's latest Hello drops "b", last named 20 s ago: nothing keeps it now.
  t.SetPeerWants("peer", {{"m/E0", "a"}}, t0 + 20s);
  EXPECT_EQ(t.Sweep(t0 + 20s).size(), 1u);
  EXPECT_EQ(t.versions(), 1u);
  // A pinned version stays whatever happens; a peer silent for the grace period is forgotten.
  EXPECT_TRUE(t.Sweep(t0 + 100s).empty());
  EXPECT_EQ(t.peers(), 0u);
  EXPECT_EQ(t.versions(), 1u);
  EXPECT_EQ(t.loads(), 3u);
  EXPECT_EQ(t.unloads(), 2u);
  // Infos: every version, by name then load order; OnePerName: the asked-for one, else the pinned one.
  t.Add(FakeBrick("m/E0", "0"), t0 + 100s);
  t.Add(FakeBrick("m/E1", "y"), t0 + 100s);
  std::vector<wire::BrickInfo> infos = t.Infos();
  ASSERT_EQ(infos.size(), 3u);
  EXPECT_EQ(infos[0].digest, "a");
  EXPECT_EQ(infos[1].digest, "0");
  EXPECT_EQ(infos[2].digest, "y");
  infos = t.OnePerName({});
  ASSERT_EQ(infos.size(), 2u);
  EXPECT_EQ(infos[0].digest, "a");
  EXPECT_EQ(infos[1].digest, "y");
  infos = t.OnePerName({{"m/E0", "0"}});
  EXPECT_EQ(infos[0].digest, "0");
  EXPECT_TRUE(t.Drop({"m/E0", "a"}));
  EXPECT_FALSE(t.IsPinned({"m/E0", "a"}));
}

// --- A node over tcp on 127.0.0.1 ----------------------------------------------------------------------

constexpr int64_t kD = 64, kF = 96;
const char* kSwapped = "L0.mlp.E2";  // the brick that gets new versions
const char* kSwappedName = "m/L0.mlp.E2";

Result<std::pair<ModelConfig, std::vector<BrickData>>> Model(uint64_t seed) {
  TestModelOptions o;
  o.layers = 2;
  o.d_model = kD;
  o.ffd_hidden = kF;
  o.gating_size = 16;
  o.vocab = 97;
  o.attn_experts = 2;
  o.mlp_experts = 4;
  o.seed = seed;
  return MakeRandomModel(o);
}

class ServerVersionsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = ::testing::TempDir() + "/brick_server_versions_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".db";
    auto v1 = Model(21);
    ASSERT_TRUE(v1.ok()) << v1.status().ToString();
    cfg_ = v1->first;
    bricks_ = v1->second;
    auto reg = Registry::Open(path_);
    ASSERT_TRUE(reg.ok()) << reg.status().ToString();
    ASSERT_TRUE((*reg)->Import("m", cfg_, bricks_, Visibility::kShared, "v1").ok());
    auto rec = (*reg)->GetBrick(kSwappedName);
    ASSERT_TRUE(rec.ok());
    v1_ = Info(*rec);
  }
  void TearDown() override {
    for (const char* suffix : {"", "-wal", "-shm"}) std::remove((path_ + suffix).c_str());
  }

  static wire::BrickInfo Info(const BrickRecord& r) {
    return MlpBrickInfo(r);
  }

  // Imports model "m" again with brick kSwapped taken from a model of another seed: a new version of
  // that brick only (another process's import, through its own connection). Returns the new version.
  wire::BrickInfo ImportNewVersion(uint64_t seed, BrickData* data = nullptr) {
    auto other = Model(seed);
    EXPECT_TRUE(other.ok());
    for (size_t i = 0; i < bricks_.size(); ++i) {
      if (bricks_[i].Name() == kSwapped) bricks_[i] = other->second[i];
    }
    auto reg = Registry::Open(path_);
    EXPECT_TRUE(reg.ok());
    auto imported = (*reg)->Import("m", cfg_, bricks_, Visibility::kShared, "v" + std::to_string(seed));
    EXPECT_TRUE(imported.ok()) << imported.status().ToString();
    EXPECT_EQ(imported->new_bricks, 1);
    auto rec = (*reg)->GetBrick(kSwappedName);
    EXPECT_TRUE(rec.ok());
    if (data != nullptr) {
      for (const BrickData& b : bricks_) {
        if (b.Name() == kSwapped) *data = b;
      }
    }
    return Info(*rec);
  }

  std::unique_ptr<BrickServer> StartServer(int grace_ms, int housekeeping_ms) {
    BrickServerOptions so;
    so.registry_path = path_;
    so.listen = "tcp://127.0.0.1:*";
    so.serve = {"m/L*.mlp.E*"};
    so.name = "cloud";
    so.unload_grace_ms = grace_ms;
    so.housekeeping_ms = housekeeping_ms;
    auto server = BrickServer::Start(so);
    EXPECT_TRUE(server.ok()) << server.status().ToString();
    return server.ok() ? std::move(*server) : nullptr;
  }

  static std::unique_ptr<RemoteExecutor> Executor(const std::string& endpoint, std::vector<wire::BrickInfo> bricks) {
    RemoteExecutorOptions eo;
    eo.endpoint = endpoint;
    eo.timeout_ms = 5000;
    eo.node_name = "cloud";
    eo.bricks = std::move(bricks);
    auto ex = RemoteExecutor::Create(eo);
    EXPECT_TRUE(ex.ok()) << ex.status().ToString();
    return ex.ok() ? std::move(*ex) : nullptr;
  }

  // What `data` (an MLP expert brick) computes for `rows` locally.
  static std::vector<float> Local(const BrickData& data, const std::vector<float>& rows) {
    ModelConfig cfg;
    cfg.n_embd = kD;
    cfg.ffd_hidden = kF;
    auto expert = MlpExpert::FromData(data, cfg);
    EXPECT_TRUE(expert.ok());
    const int64_t m = static_cast<int64_t>(rows.size()) / kD;
    std::vector<float> out(rows.size()), mid(static_cast<size_t>(m * kF));
    (*expert)->Forward(rows.data(), m, out.data(), mid.data(), nullptr, nullptr);
    return out;
  }

  // Runs `rows` through expert `b` (layer 0) on the node.
  static Result<std::vector<float>> Remote(RemoteExecutor& ex, const wire::BrickInfo& b,
                                           const std::vector<float>& rows) {
    const std::vector<int64_t> experts = {b.index};
    const std::vector<int32_t> counts = {static_cast<int32_t>(rows.size() / kD)};
    std::vector<float> out(rows.size());
    BRICK_RETURN_IF_ERROR(ex.Start(ExpertCall{b.layer, kD, experts, counts, rows.data(), out.data()}));
    BRICK_RETURN_IF_ERROR(ex.Finish());
    return out;
  }

  const BrickData& Current() const {
    for (const BrickData& b : bricks_) {
      if (b.Name() == kSwapped) return b;
    }
    std::abort();
  }

  static bool Serves(const BrickServer& s, const wire::BrickInfo& b) {
    for (const wire::BrickInfo& i : s.bricks()) {
      if (i.name == b.name && i.digest == b.digest) return true;
    }
    return false;
  }

  static bool WaitFor(const std::function<bool()>& cond, std::chrono::milliseconds limit = 10s) {
    const auto deadline = Clock::now() + limit;
    while (Clock::now() < deadline) {
      if (cond()) return true;
      std::this_thread::sleep_for(10ms);
    }
    return cond();
  }

  std::string path_;
  ModelConfig cfg_;
  std::vector<BrickData> bricks_;
  wire::BrickInfo v1_;
};

std::vector<float> RandomRows(int rows, uint64_t seed) {
  std::vector<float> v(static_cast<size_t>(rows * kD));
  Rng rng(seed);
  for (float& x : v) x = static_cast<float>(rng.Uniform()) - 0.5f;
  return v;
}

TEST_F(ServerVersionsTest, OldAndNewVersionsServedSideBySideToTheirCoordinators) {
  // Housekeeping never comes during the test: the new version is loaded because a Hello asks for it.
  auto server = StartServer(30000, 600000);
  ASSERT_NE(server, nullptr);
  const BrickData v1_data = Current();
  const size_t at_start = server->stats().versions;
  EXPECT_EQ(at_start, 8u);
  BrickData v2_data;
  const wire::BrickInfo v2 = ImportNewVersion(22, &v2_data);  // after the node started
  ASSERT_NE(v2.digest, v1_.digest);
  EXPECT_FALSE(Serves(*server, v2));

  auto old_ex = Executor(server->endpoint(), {v1_});
  auto new_ex = Executor(server->endpoint(), {v2});
  ASSERT_TRUE(old_ex->Connect().ok());
  const Status st = new_ex->Connect();
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_TRUE(Serves(*server, v1_) && Serves(*server, v2));
  EXPECT_EQ(server->stats().versions, at_start + 1);
  // Each Welcome lists one version per name (protocol 1): the one its Hello asked for.
  EXPECT_EQ(new_ex->welcome().bricks.size(), at_start);
  EXPECT_EQ(old_ex->welcome().bricks.size(), at_start);
  for (const wire::BrickInfo& b : new_ex->welcome().bricks) {
    if (b.name == kSwappedName) {
      EXPECT_EQ(b.digest, v2.digest);
    }
  }
  for (const wire::BrickInfo& b : old_ex->welcome().bricks) {
    if (b.name == kSwappedName) {
      EXPECT_EQ(b.digest, v1_.digest);
    }
  }

  // Both coordinators at once, each getting its own version's results, bit for bit.
  const std::vector<float> rows = RandomRows(5, 3);
  const std::vector<float> want_old = Local(v1_data, rows), want_new = Local(v2_data, rows);
  ASSERT_NE(want_old, want_new);
  std::atomic<int> wrong{0}, failed{0};
  auto loop = [&](RemoteExecutor& ex, const wire::BrickInfo& b, const std::vector<float>& want) {
    for (int i = 0; i < 100; ++i) {
      auto got = Remote(ex, b, rows);
      if (!got.ok()) {
        ++failed;
        ADD_FAILURE() << got.status().ToString();
        return;
      }
      wrong += *got != want;
    }
  };
  std::thread a([&] { loop(*old_ex, v1_, want_old); });
  std::thread b([&] { loop(*new_ex, v2, want_new); });
  a.join();
  b.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(wrong.load(), 0);
}

TEST_F(ServerVersionsTest, AVersionNoLiveCoordinatorAsksForIsUnloadedAfterTheGracePeriod) {
  constexpr int kGraceMs = 600;  // long beside a step, so a loaded machine does not make a live peer look gone
  auto server = StartServer(kGraceMs, 20);
  ASSERT_NE(server, nullptr);
  std::weak_ptr<const MlpExpert> v1_weights = server->WatchExpertForTesting(v1_.name, v1_.digest);
  ASSERT_FALSE(v1_weights.expired());

  // Coordinator A stays on v1 and keeps talking; B asks for v2, imported while the node runs.
  auto a = Executor(server->endpoint(), {v1_});
  ASSERT_TRUE(a->Connect().ok());
  BrickData v2_data;
  const wire::BrickInfo v2 = ImportNewVersion(22, &v2_data);
  auto b = Executor(server->endpoint(), {v2});
  ASSERT_TRUE(b->Connect().ok());
  // The registry moved: the node's default set follows it (v2 loaded and pinned, v1 no longer), but
  // v1 stays while A's Hello lists it and A keeps talking, many grace periods long.
  const std::vector<float> rows = RandomRows(2, 4);
  const std::vector<float> want_v2 = Local(v2_data, rows);
  Clock::time_point a_last;
  for (int i = 0; i < 8; ++i) {
    ASSERT_TRUE(Remote(*a, v1_, rows).ok());
    a_last = Clock::now();
    ASSERT_TRUE(Remote(*b, v2, rows).ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(kGraceMs / 4));
  }
  EXPECT_TRUE(Serves(*server, v1_)) << "a live coordinator still asks for v1";
  EXPECT_EQ(server->stats().unloads, 0u);

  // A moves to v2 (a new Hello) and goes on; nobody asks for v1 any more: it goes after the grace
  // period, and its weights are released.
  auto a2 = Executor(server->endpoint(), {v2});
  ASSERT_TRUE(a2->Connect().ok());
  a.reset();  // its socket falls silent
  EXPECT_TRUE(WaitFor([&] {
    EXPECT_TRUE(Remote(*a2, v2, rows).ok());
    return !Serves(*server, v1_);
  }));
  EXPECT_GE(Clock::now() - a_last, std::chrono::milliseconds(kGraceMs)) << "not before the grace period";
  EXPECT_TRUE(v1_weights.expired()) << "the unloaded version's memory is released";
  EXPECT_EQ(server->stats().unloads, 1u);
  EXPECT_TRUE(Serves(*server, v2)) << "the new default stays, asked for or not";
  auto got = Remote(*b, v2, rows);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(*got == want_v2);
  EXPECT_EQ(server->stats().versions, 8u);
}

// A raw DEALER: one socket (one ROUTER identity) whose Hello moves from one version to another.
class RawPeer {
 public:
  explicit RawPeer(const std::string& endpoint) : sock_(ctx_, zmq::socket_type::dealer) {
    sock_.set(zmq::sockopt::linger, 0);
    sock_.connect(endpoint);
  }
  wire::Message Ask(const wire::Message& m) {
    pending_ = wire::Encode(m);
    for (size_t i = 0; i < pending_.size(); ++i) {
      sock_.send(zmq::buffer(pending_[i]), i + 1 < pending_.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
    }
    zmq::pollitem_t item{sock_.handle(), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, 5000ms);
    parts_.clear();
    if (!(item.revents & ZMQ_POLLIN) || !zmq::recv_multipart(sock_, std::back_inserter(parts_))) return wire::Error{};
    std::vector<std::string_view> frames;
    for (const auto& p : parts_) frames.push_back(p.to_string_view());
    auto decoded = wire::Decode(frames, wire::WireLimits{});
    EXPECT_TRUE(decoded.ok()) << decoded.status().ToString();
    return decoded.ok() ? *decoded : wire::Error{};
  }

 private:
  zmq::context_t ctx_{1};
  zmq::socket_t sock_;
  std::vector<std::string> pending_;
  std::vector<zmq::message_t> parts_;
};

TEST_F(ServerVersionsTest, AHelloThatMovesToAnotherVersionReleasesTheOldOneAndBatchesLoadOnDemand) {
  constexpr int kGraceMs = 500;
  // Housekeeping sweeps often but the import below is a version nobody pins: v2 and v3 are both newer
  // than the default, and the default follows to v3.
  auto server = StartServer(kGraceMs, 20);
  ASSERT_NE(server, nullptr);
  BrickData v2_data, v3_data;
  const wire::BrickInfo v2 = ImportNewVersion(22, &v2_data);
  const wire::BrickInfo v3 = ImportNewVersion(23, &v3_data);
  ASSERT_TRUE(WaitFor([&] { return Serves(*server, v3) && !Serves(*server, v1_); })) << "default follows the registry";

  RawPeer peer(server->endpoint());
  wire::Message m = peer.Ask(wire::Hello{"raw", {"f32"}, {v2}});
  ASSERT_TRUE(std::holds_alternative<wire::Welcome>(m));
  EXPECT_EQ(std::get<wire::Welcome>(m).bricks.size(), 8u);
  EXPECT_EQ(server->bricks().size(), 9u) << "v2 next to the defaults";
  std::vector<float> rows = RandomRows(3, 5);
  auto batch = [&](const wire::BrickInfo& b, uint64_t id) {
    wire::ExpertBatch eb;
    eb.request_id = id;
    eb.layer = b.layer;
    eb.width = kD;
    eb.bricks = {{b.name, b.digest, 3}};
    eb.rows = std::as_bytes(std::span<const float>(rows));
    return eb;
  };
  for (int i = 0; i < 8; ++i) {  // alive, asking for v2 in its Hello, talking about another brick
    m = peer.Ask(batch(v3, 10 + i));
    ASSERT_TRUE(std::holds_alternative<wire::ExpertResult>(m));
    std::this_thread::sleep_for(std::chrono::milliseconds(kGraceMs / 4));
  }
  EXPECT_TRUE(Serves(*server, v2));
  auto v2_weights = server->WatchExpertForTesting(v2.name, v2.digest);
  m = peer.Ask(wire::Hello{"raw", {"f32"}, {v3}});  // same socket, same identity: its set moves
  ASSERT_TRUE(std::holds_alternative<wire::Welcome>(m));
  EXPECT_TRUE(WaitFor([&] {
    peer.Ask(batch(v3, 30));
    return !Serves(*server, v2);
  }));
  EXPECT_TRUE(v2_weights.expired());

  // A batch naming a version the node holds no more (a coordinator silent past the grace period)
  // loads it again on demand, without a Hello, and computes with it.
  m = peer.Ask(batch(v2, 40));
  const auto* result = std::get_if<wire::ExpertResult>(&m);
  ASSERT_NE(result, nullptr) << (std::holds_alternative<wire::Error>(m) ? std::get<wire::Error>(m).message : "");
  std::vector<float> out(rows.size());
  ASSERT_EQ(result->out.size(), out.size() * sizeof(float));
  std::memcpy(out.data(), result->out.data(), result->out.size());
  EXPECT_TRUE(out == Local(v2_data, rows));
}

TEST_F(ServerVersionsTest, PrivateAndUnknownVersionsAreRefusedNamingTheBrick) {
  // A private new version (made private before the node looks: an import is shared until then).
  const wire::BrickInfo secret = ImportNewVersion(24);
  {
    auto reg = testing::OpenOrDie(path_);
    ASSERT_TRUE(reg->SetVisibility(kSwappedName + std::string("@2"), Visibility::kPrivate).ok());
  }
  auto server = StartServer(30000, 20);
  ASSERT_NE(server, nullptr);
  EXPECT_TRUE(Serves(*server, v1_)) << "the newest shared version is the default";
  // Never loaded, neither for a Hello nor for a batch nor by a refresh of the default set.
  Status st = Executor(server->endpoint(), {secret})->Connect();
  EXPECT_EQ(st.code(), StatusCode::kNotFound) << st.ToString();
  EXPECT_TRUE(Contains(st.message(), kSwappedName + std::string("@2")) && Contains(st.message(), "private"))
      << st.message();
  RawPeer peer(server->endpoint());
  std::vector<float> rows = RandomRows(1, 7);
  wire::ExpertBatch eb;
  eb.request_id = 9;
  eb.width = kD;
  eb.bricks = {{secret.name, secret.digest, 1}};
  eb.rows = std::as_bytes(std::span<const float>(rows));
  wire::Message m = peer.Ask(eb);
  ASSERT_TRUE(std::holds_alternative<wire::Error>(m));
  EXPECT_EQ(std::get<wire::Error>(m).code, wire::ErrorCode::kUnknownBrick);
  {
    auto reg = testing::OpenOrDie(path_);  // any write: the node scans its registry again
    ASSERT_TRUE(reg->Tag("m", "stable").ok());
  }
  std::this_thread::sleep_for(200ms);  // several housekeepings
  EXPECT_FALSE(Serves(*server, secret));
  EXPECT_TRUE(Serves(*server, v1_));

  // Unknown digest, unknown name, a name no glob selects: each named, with why.
  wire::BrickInfo bad = v1_;
  bad.digest = std::string(64, 'a');
  st = Executor(server->endpoint(), {bad})->Connect();
  EXPECT_EQ(st.code(), StatusCode::kCorrupt) << st.ToString();
  EXPECT_TRUE(Contains(st.message(), kSwappedName) && Contains(st.message(), bad.digest) &&
              Contains(st.message(), "has no version") && Contains(st.message(), "'cloud'"))
      << st.message();
  st = Executor(server->endpoint(), {{"m/L0.mlp.E9", bad.digest, wire::ExpertKind::kMlp, 0, 9}})->Connect();
  EXPECT_EQ(st.code(), StatusCode::kNotFound) << st.ToString();
  EXPECT_TRUE(Contains(st.message(), "m/L0.mlp.E9")) << st.message();
  st = Executor(server->endpoint(), {{"m/L0.attn.E0", bad.digest, wire::ExpertKind::kMlp, 0, 0}})->Connect();
  EXPECT_EQ(st.code(), StatusCode::kNotFound) << st.ToString();
  EXPECT_TRUE(Contains(st.message(), "m/L0.attn.E0") && Contains(st.message(), "no serve glob")) << st.message();
}

TEST_F(ServerVersionsTest, ACorruptNewVersionFailsThatHelloOnly) {
  auto server = StartServer(30000, 600000);  // no refresh during the test: the Hello loads it
  ASSERT_NE(server, nullptr);
  const std::vector<float> rows = RandomRows(2, 6);
  const std::vector<float> want_v1 = Local(Current(), rows);
  auto old = Executor(server->endpoint(), {v1_});
  ASSERT_TRUE(old->Connect().ok());

  const wire::BrickInfo broken = ImportNewVersion(25);
  testing::RawDb(path_).FlipBlobByte(broken.digest, 100);
  const Status st = Executor(server->endpoint(), {broken})->Connect();
  EXPECT_EQ(st.code(), StatusCode::kInternal) << st.ToString();
  EXPECT_TRUE(Contains(st.message(), kSwappedName) && Contains(st.message(), "digest mismatch")) << st.message();
  EXPECT_FALSE(Serves(*server, broken));
  EXPECT_TRUE(Serves(*server, v1_));

  // A flood of Hellos for versions that do not exist, from many sockets: each refused, nothing stops.
  for (int i = 0; i < 50; ++i) {
    wire::BrickInfo junk = v1_;
    junk.digest = std::string(63, 'b') + "0123456789"[i % 10];
    RawPeer p(server->endpoint());
    const wire::Message m = p.Ask(wire::Hello{"junk", {}, {junk}});
    const auto* e = std::get_if<wire::Error>(&m);
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(e->code, wire::ErrorCode::kDigestMismatch);
  }
  auto got = Remote(*old, v1_, rows);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(*got == want_v1) << "the coordinator on v1 is served all along";
}

TEST_F(ServerVersionsTest, AServedVersionMadePrivateIsDroppedAtOnce) {
  auto server = StartServer(30000, 20);
  ASSERT_NE(server, nullptr);
  ASSERT_TRUE(Serves(*server, v1_));
  {
    auto reg = testing::OpenOrDie(path_);
    ASSERT_TRUE(reg->SetVisibility(kSwappedName, Visibility::kPrivate).ok());
  }
  EXPECT_TRUE(WaitFor([&] { return !Serves(*server, v1_); }, 5s)) << "private bricks never leave their device";
  const Status st = Executor(server->endpoint(), {v1_})->Connect();
  EXPECT_EQ(st.code(), StatusCode::kNotFound) << st.ToString();
}

}  // namespace
}  // namespace brickrt
