// The brick node and the remote executor over tcp on 127.0.0.1, in one process: a session whose even
// MLP experts run on a BrickServer gives the same logits, bit for bit, as all-local execution; digest
// and brick mismatches are refused naming the brick; private bricks are never served; a node stopped
// mid-generation fails the step within the timeout; a flood of malformed messages stops nobody.
#include "node/brick_server.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <atomic>
#include <functional>
#include <iostream>
#include <thread>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "bricks/session.h"
#include "core/rng.h"
#include "node/brick_info.h"
#include "node/remote_executor.h"
#include "node/submodel.h"
#include "registry/test_model.h"
#include "tests/bricks/split_steps.h"

namespace brickrt {
namespace {

using Clock = std::chrono::steady_clock;
using testing::RunSteps;

const char* kPrivateBrick = "m/L0.mlp.E1";  // odd: the session keeps it local

class ServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    path_ = new std::string(::testing::TempDir() + "/brick_server_test_" + std::to_string(getpid()) + ".db");
    TestModelOptions o;
    o.layers = 3;
    o.d_model = 64;
    o.ffd_hidden = 96;
    o.gating_size = 32;
    o.vocab = 257;
    o.attn_experts_per_layer = {4, 3, 6};
    o.mlp_experts_per_layer = {8, 5, 7};
    o.dtype = DType::kBF16;
    o.seed = 21;
    auto made = MakeRandomModel(o);
    ASSERT_TRUE(made.ok()) << made.status().ToString();
    auto reg = Registry::Open(*path_);
    ASSERT_TRUE(reg.ok()) << reg.status().ToString();
    auto imported = (*reg)->Import("m", made->first, made->second, Visibility::kShared, "test");
    ASSERT_TRUE(imported.ok()) << imported.status().ToString();
    ASSERT_TRUE((*reg)->SetVisibility(kPrivateBrick, Visibility::kPrivate).ok());
    auto loaded = LoadManifestModel(**reg, imported->manifest);
    ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
    model_ = new std::shared_ptr<const Model>(loaded->model);
    auto records = (*reg)->ManifestBricks(imported->manifest);
    ASSERT_TRUE(records.ok());
    even_ = new std::vector<wire::BrickInfo>();
    for (const BrickRecord& r : *records) {
      if (r.kind == BrickKind::kMlpExpert && r.index % 2 == 0) {
        even_->push_back(MlpBrickInfo(r));
      }
    }
  }
  static void TearDownTestSuite() {
    for (const char* suffix : {"", "-wal", "-shm"}) std::remove((*path_ + suffix).c_str());
    delete path_;
    delete model_;
    delete even_;
  }

  static std::unique_ptr<BrickServer> StartServer(const std::string& listen = "tcp://127.0.0.1:*") {
    BrickServerOptions so;
    so.registry_path = *path_;
    so.listen = listen;
    so.serve = {"m/L*.mlp.E*"};
    so.name = "cloud";
    auto server = BrickServer::Start(so);
    EXPECT_TRUE(server.ok()) << server.status().ToString();
    return server.ok() ? std::move(*server) : nullptr;
  }

  static std::unique_ptr<RemoteExecutor> Executor(const std::string& endpoint, std::vector<wire::BrickInfo> bricks,
                                                  int timeout_ms = 2000) {
    RemoteExecutorOptions eo;
    eo.endpoint = endpoint;
    eo.timeout_ms = timeout_ms;
    eo.node_name = "cloud";
    eo.bricks = std::move(bricks);
    auto ex = RemoteExecutor::Create(eo);
    EXPECT_TRUE(ex.ok()) << ex.status().ToString();
    return ex.ok() ? std::move(*ex) : nullptr;
  }

  // Even experts of every layer on executor 0, the rest local.
  static MlpPlacement EvenRemote(ExpertExecutor* ex) {
    MlpPlacement p;
    p.executors = {ex};
    for (const Layer& layer : (*model_)->layers()) {
      p.owner.emplace_back();
      for (int64_t id : layer.mlp_ids) p.owner.back().push_back(id % 2 == 0 ? 0 : MlpPlacement::kLocal);
    }
    return p;
  }

  static std::string* path_;
  static std::shared_ptr<const Model>* model_;
  static std::vector<wire::BrickInfo>* even_;
};
std::string* ServerTest::path_ = nullptr;
std::shared_ptr<const Model>* ServerTest::model_ = nullptr;
std::vector<wire::BrickInfo>* ServerTest::even_ = nullptr;


bool Contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

TEST_F(ServerTest, SplitOverTcpEqualsLocalBitForBit) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  EXPECT_EQ(server->bricks().size(), 8u + 5u + 7u - 1u) << "every MLP expert but the private one";
  auto ex = Executor(server->endpoint(), *even_);
  ASSERT_NE(ex, nullptr);
  ASSERT_TRUE(ex->Connect().ok());
  EXPECT_EQ(ex->welcome().name, "cloud");

  Status st;
  const std::vector<float> local = RunSteps(*model_, nullptr, &st);
  ASSERT_TRUE(st.ok()) << st.ToString();
  const MlpPlacement p = EvenRemote(ex.get());
  const std::vector<float> split = RunSteps(*model_, &p, &st);
  ASSERT_TRUE(st.ok()) << st.ToString();
  ASSERT_EQ(split.size(), local.size());
  // The node runs the same kernels on the same bytes with the same row counts: equal bit for bit.
  EXPECT_TRUE(split == local) << "split execution over tcp must equal local execution";

  // Informational: round trips of a decode-sized call (4 tokens x top-2 over two bricks, 2 KiB).
  const Layer& l0 = (*model_)->layers()[0];
  const int64_t D = (*model_)->config().n_embd, F = (*model_)->config().ffd_hidden;
  const std::vector<int64_t> experts = {0, 2};
  const std::vector<int32_t> counts = {4, 4};
  std::vector<float> rows(static_cast<size_t>(8 * D)), out(rows.size()), want(rows.size()),
      mid(static_cast<size_t>(4 * F));
  Rng rng(5);
  for (float& v : rows) v = static_cast<float>(rng.Uniform()) - 0.5f;
  for (size_t i = 0; i < 2; ++i) {
    l0.mlp[static_cast<size_t>(experts[i])]->Forward(rows.data() + i * 4 * D, 4, want.data() + i * 4 * D, mid.data(),
                                                     nullptr, nullptr);
  }
  const ExpertCall call{0, D, experts, counts, rows.data(), out.data()};
  std::vector<double> us;
  for (int i = 0; i < 200; ++i) {
    const auto t0 = Clock::now();
    ASSERT_TRUE(ex->Start(call).ok());
    ASSERT_TRUE(ex->Finish().ok());
    us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  EXPECT_TRUE(out == want);
  std::sort(us.begin(), us.end());
  std::cout << "[ info ] decode-sized call (8 rows x " << D << ", 2 bricks) round trip over tcp loopback: median "
            << us[us.size() / 2] << " us, p99 " << us[us.size() * 99 / 100] << " us\n";
}

TEST_F(ServerTest, ServesSeveralCoordinatorsAtOnce) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  Status st;
  const std::vector<float> local = RunSteps(*model_, nullptr, &st);
  ASSERT_TRUE(st.ok()) << st.ToString();
  // Three sessions, each with its own executor (socket), on their own threads against one node.
  std::vector<std::vector<float>> got(3);
  std::vector<Status> status(3);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < got.size(); ++i) {
    threads.emplace_back([&, i] {
      auto ex = Executor(server->endpoint(), *even_);
      status[i] = ex->Connect();
      if (!status[i].ok()) return;
      const MlpPlacement p = EvenRemote(ex.get());
      got[i] = RunSteps(*model_, &p, &status[i]);
    });
  }
  for (auto& t : threads) t.join();
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_TRUE(status[i].ok()) << status[i].ToString();
    EXPECT_TRUE(got[i] == local) << "coordinator " << i;
  }
}

TEST_F(ServerTest, ConnectRefusesADigestMismatchAndAnUnknownBrickNamingThem) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  std::vector<wire::BrickInfo> bricks = *even_;
  bricks[3].digest = std::string(64, 'a');
  auto ex = Executor(server->endpoint(), bricks);
  Status st = ex->Connect();
  EXPECT_EQ(st.code(), StatusCode::kCorrupt) << st.ToString();
  EXPECT_TRUE(Contains(st.message(), bricks[3].name) && Contains(st.message(), "cloud")) << st.message();

  bricks = *even_;
  bricks.push_back({"m/L0.mlp.E99", std::string(64, 'b'), wire::ExpertKind::kMlp, 0, 99});
  st = Executor(server->endpoint(), bricks)->Connect();
  EXPECT_EQ(st.code(), StatusCode::kNotFound) << st.ToString();
  EXPECT_TRUE(Contains(st.message(), "m/L0.mlp.E99")) << st.message();

  // An expert the executor has no brick for is refused before anything is sent.
  auto good = Executor(server->endpoint(), *even_);
  ASSERT_TRUE(good->Connect().ok());
  const std::vector<int64_t> experts = {1};
  const std::vector<int32_t> counts = {1};
  std::vector<float> row(64), out(64);
  st = good->Start(ExpertCall{0, 64, experts, counts, row.data(), out.data()});
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.ToString();
}

TEST_F(ServerTest, PrivateBricksAreNeverServed) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  for (const wire::BrickInfo& b : server->bricks()) EXPECT_NE(b.name, kPrivateBrick);
  auto ex = Executor(server->endpoint(), {{kPrivateBrick, std::string(64, 'c'), wire::ExpertKind::kMlp, 0, 1}});
  const Status st = ex->Connect();
  EXPECT_EQ(st.code(), StatusCode::kNotFound) << st.ToString();

  BrickServerOptions so;
  so.registry_path = *path_;
  so.listen = "tcp://127.0.0.1:*";
  so.serve = {kPrivateBrick};
  auto refused = BrickServer::Start(so);
  ASSERT_FALSE(refused.ok());
  EXPECT_TRUE(Contains(refused.status().message(), "private")) << refused.status().ToString();
  so.serve = {"m/L*.attn.E*"};
  refused = BrickServer::Start(so);
  EXPECT_EQ(refused.status().code(), StatusCode::kUnsupported) << refused.status().ToString();
  so.serve = {"other/*"};
  refused = BrickServer::Start(so);
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument) << refused.status().ToString();
}

TEST_F(ServerTest, ANodeStoppedMidGenerationFailsTheStepWithinTheTimeout) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  const std::string endpoint = server->endpoint();
  constexpr int kTimeoutMs = 200;
  auto ex = Executor(endpoint, *even_, kTimeoutMs);
  ASSERT_TRUE(ex->Connect().ok());
  const MlpPlacement p = EvenRemote(ex.get());
  SessionOptions so{1, 32, 32};
  so.mlp_placement = &p;
  auto session = Session::Create(*model_, so, nullptr);
  ASSERT_TRUE(session.ok());
  Session& s = **session;
  const int seq = *s.AddSequence();
  const std::vector<int32_t> prompt = {4, 8, 15, 16, 23, 42};
  const SequenceChunk c{seq, prompt};
  std::vector<float> logits(static_cast<size_t>((*model_)->config().vocab_size));
  ASSERT_TRUE(s.Forward({&c, 1}, false, logits.data()).ok());

  server->Stop();
  const int32_t next = 7;
  const SequenceChunk d{seq, {&next, 1}};
  const auto t0 = Clock::now();
  const Status st = s.Forward({&d, 1}, false, logits.data());
  const auto ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  EXPECT_EQ(st.code(), StatusCode::kUnavailable) << st.ToString();
  EXPECT_TRUE(Contains(st.message(), "did not answer layer 0 within 200 ms")) << st.message();
  EXPECT_LT(ms, 10.0 * kTimeoutMs) << "never hang";
  EXPECT_EQ(s.Length(seq), static_cast<int64_t>(prompt.size())) << "the failed step advances nothing";

  // The node comes back on the same endpoint: the executor's next call reaches it.
  server = StartServer(endpoint);
  ASSERT_NE(server, nullptr);
  Status again;
  for (int i = 0; i < 10 && !(again = s.Forward({&d, 1}, false, logits.data())).ok(); ++i) {
  }
  EXPECT_TRUE(again.ok()) << again.ToString();
  EXPECT_EQ(s.Length(seq), static_cast<int64_t>(prompt.size()) + 1);
}

// Raw frames from a DEALER: what arrives back within `ms`.
std::vector<std::vector<zmq::message_t>> Drain(zmq::socket_t& sock, int ms) {
  std::vector<std::vector<zmq::message_t>> got;
  const auto deadline = Clock::now() + std::chrono::milliseconds(ms);
  while (Clock::now() < deadline) {
    zmq::pollitem_t item{sock.handle(), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, std::chrono::milliseconds(20));
    if (!(item.revents & ZMQ_POLLIN)) continue;
    std::vector<zmq::message_t> parts;
    if (zmq::recv_multipart(sock, std::back_inserter(parts), zmq::recv_flags::dontwait)) got.push_back(std::move(parts));
  }
  return got;
}

wire::Message DecodeReply(const std::vector<zmq::message_t>& parts) {
  std::vector<std::string_view> frames;
  for (const auto& p : parts) frames.push_back(p.to_string_view());
  auto m = wire::Decode(frames, wire::WireLimits{});
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  return m.ok() ? *m : wire::Message{};
}

TEST_F(ServerTest, BatchErrorsNameTheBrickAndMalformedFloodsStopNobody) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  zmq::context_t ctx(1);
  zmq::socket_t raw(ctx, zmq::socket_type::dealer);
  raw.set(zmq::sockopt::linger, 0);
  raw.connect(server->endpoint());
  auto send = [&](const std::vector<std::string>& frames) {
    for (size_t i = 0; i < frames.size(); ++i) {
      raw.send(zmq::buffer(frames[i]), i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
    }
  };

  // Well-formed batches the node refuses, each answered with an Error naming the brick.
  const wire::BrickInfo& e0 = (*even_)[0];  // m/L0.mlp.E0
  std::vector<float> rows(64, 0.5f);
  const auto bytes = std::as_bytes(std::span<const float>(rows));
  auto batch = [&](std::string name, std::string digest, uint32_t layer, uint32_t width, uint64_t id) {
    wire::ExpertBatch b;
    b.request_id = id;
    b.layer = layer;
    b.width = width;
    b.bricks = {{std::move(name), std::move(digest), static_cast<uint32_t>(64 / width)}};
    b.rows = bytes;
    return wire::Encode(b);
  };
  send(batch("m/L0.mlp.E99", e0.digest, 0, 64, 11));
  send(batch(e0.name, std::string(64, 'f'), 0, 64, 12));
  send(batch(e0.name, e0.digest, 1, 64, 13));
  send(batch(e0.name, e0.digest, 0, 32, 14));
  send(batch(kPrivateBrick, e0.digest, 0, 64, 15));
  auto replies = Drain(raw, 300);
  ASSERT_EQ(replies.size(), 5u);
  const std::vector<std::pair<wire::ErrorCode, std::string>> want = {
      {wire::ErrorCode::kUnknownBrick, "m/L0.mlp.E99"}, {wire::ErrorCode::kDigestMismatch, e0.name},
      {wire::ErrorCode::kMalformed, "layer"},           {wire::ErrorCode::kMalformed, "width"},
      {wire::ErrorCode::kUnknownBrick, kPrivateBrick}};
  for (size_t i = 0; i < replies.size(); ++i) {
    const wire::Message m = DecodeReply(replies[i]);
    const auto* e = std::get_if<wire::Error>(&m);
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(e->request_id, 11 + i);
    EXPECT_EQ(e->code, want[i].first) << e->message;
    EXPECT_TRUE(Contains(e->message, want[i].second)) << e->message;
  }

  // A thousand malformed messages: random bytes, truncated and padded tensors, too many frames, bad
  // versions, replies sent to the node. Each gets an Error or nothing; the node keeps serving.
  Rng rng(99);
  const std::vector<std::string> good = batch(e0.name, e0.digest, 0, 64, 20);
  int expect_errors_at_least = 0;
  for (int i = 0; i < 1000; ++i) {
    std::vector<std::string> frames;
    switch (i % 6) {
      case 0: {  // random bytes in 1..10 frames
        const int n = 1 + static_cast<int>(rng.Next() % 10);
        for (int f = 0; f < n; ++f) {
          std::string s(rng.Next() % 200, '\0');
          for (char& ch : s) ch = static_cast<char>(rng.Next());
          frames.push_back(std::move(s));
        }
        break;
      }
      case 1:  // the tensor one byte short
        frames = good;
        frames[1].pop_back();
        ++expect_errors_at_least;
        break;
      case 2:  // the tensor one byte long
        frames = good;
        frames[1].push_back('x');
        ++expect_errors_at_least;
        break;
      case 3:  // a header frame cut anywhere
        frames = {good[0].substr(0, rng.Next() % good[0].size()), good[1]};
        break;
      case 4:  // another protocol version
        frames = {wire::EncodeHeader(wire::Hello{"old", {}, {}}, 7)};
        ++expect_errors_at_least;
        break;
      default:  // a reply sent to the node, plus too many frames
        frames = wire::Encode(wire::Error{3, wire::ErrorCode::kInternal, "hi"});
        if (i % 12 == 5) frames.resize(40, "z");
        break;
    }
    send(frames);
  }
  replies = Drain(raw, 500);
  EXPECT_GE(static_cast<int>(replies.size()), expect_errors_at_least);
  for (const auto& r : replies) {
    // A cut that only dropped the header's trailing padding leaves a valid request (id 20), answered.
    const wire::Message m = DecodeReply(r);
    const auto* result = std::get_if<wire::ExpertResult>(&m);
    EXPECT_TRUE(std::holds_alternative<wire::Error>(m) || (result != nullptr && result->request_id == 20))
        << "a malformed message gets an Error or nothing";
  }

  // A good client afterwards gets a correct answer.
  auto ex = Executor(server->endpoint(), *even_);
  ASSERT_TRUE(ex->Connect().ok());
  const std::vector<int64_t> experts = {0};
  const std::vector<int32_t> counts = {1};
  std::vector<float> out(64), expect(64), mid(96);
  (*model_)->layers()[0].mlp[0]->Forward(rows.data(), 1, expect.data(), mid.data(), nullptr, nullptr);
  ASSERT_TRUE(ex->Start(ExpertCall{0, 64, experts, counts, rows.data(), out.data()}).ok());
  const Status st = ex->Finish();
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_TRUE(out == expect);
}

// A scripted node on 127.0.0.1: answers each decoded request with the replies `script` returns
// (each a list of frames), on its own thread. For what a real node never sends.
class FakeNode {
 public:
  using Script = std::function<std::vector<std::vector<std::string>>(const wire::Message&)>;
  explicit FakeNode(Script script) : script_(std::move(script)), sock_(ctx_, zmq::socket_type::router) {
    sock_.set(zmq::sockopt::linger, 0);
    sock_.bind("tcp://127.0.0.1:*");
    endpoint = sock_.get(zmq::sockopt::last_endpoint);
    thread_ = std::thread([this] { Loop(); });  // the socket moves to that thread from here on
  }
  ~FakeNode() {
    stop_ = true;
    thread_.join();
  }
  std::string endpoint;

 private:
  void Loop() {
    while (!stop_) {
      zmq::pollitem_t item{sock_.handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, std::chrono::milliseconds(10));
      std::vector<zmq::message_t> parts;
      if (!(item.revents & ZMQ_POLLIN) ||
          !zmq::recv_multipart(sock_, std::back_inserter(parts), zmq::recv_flags::dontwait)) {
        continue;
      }
      std::vector<std::string_view> frames;
      for (size_t i = 1; i < parts.size(); ++i) frames.push_back(parts[i].to_string_view());
      auto m = wire::Decode(frames, wire::WireLimits{});
      if (!m.ok()) continue;
      for (const auto& reply : script_(*m)) {
        sock_.send(zmq::buffer(parts[0].to_string_view()), zmq::send_flags::sndmore);
        for (size_t i = 0; i < reply.size(); ++i) {
          sock_.send(zmq::buffer(reply[i]), i + 1 < reply.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
        }
      }
    }
  }

  Script script_;
  zmq::context_t ctx_{1};
  zmq::socket_t sock_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

const wire::BrickInfo kFakeBrick{"f/L0.mlp.E0", std::string(64, 'd'), wire::ExpertKind::kMlp, 0, 0};

std::vector<std::string> Welcome() { return wire::Encode(wire::Welcome{"fake", {"f32"}, {kFakeBrick}}); }

// Echoes the batch's rows as its result under request id `id_of(batch)`.
std::vector<std::string> Echo(const wire::ExpertBatch& b, uint64_t id, std::vector<uint32_t> rows = {}) {
  if (rows.empty()) {
    for (const auto& bb : b.bricks) rows.push_back(bb.rows);
  }
  return wire::Encode(wire::ExpertResult{id, wire::DType::kF32, b.width, std::move(rows), b.rows});
}

TEST(RemoteExecutorTest, ReportsVersionsErrorsStaleAndMisfitRepliesOfANode) {
  RemoteExecutorOptions eo;
  eo.node_name = "fake";
  eo.timeout_ms = 300;
  eo.bricks = {kFakeBrick};
  const std::vector<int64_t> experts = {0};
  const std::vector<int32_t> counts = {2};
  std::vector<float> rows = {1, 2, 3, 4, 5, 6, 7, 8}, out(8);
  const ExpertCall call{0, 4, experts, counts, rows.data(), out.data()};

  {  // A node of another protocol version: refused at connect, saying which versions.
    FakeNode node([](const wire::Message&) {
      return std::vector<std::vector<std::string>>{
          {wire::EncodeHeader(wire::Error{0, wire::ErrorCode::kVersionMismatch, "node speaks 2"}, 2)}};
    });
    eo.endpoint = node.endpoint;
    const Status st = (*RemoteExecutor::Create(eo))->Connect();
    EXPECT_EQ(st.code(), StatusCode::kUnsupported) << st.ToString();
    EXPECT_TRUE(Contains(st.message(), "node speaks protocol 2, this brickrt speaks protocol 1")) << st.message();
    EXPECT_TRUE(Contains(st.message(), "node 'fake' (" + node.endpoint + ")")) << st.message();
  }
  {  // A stale reply (an earlier request's id) is dropped; the matching one is used.
    FakeNode node([](const wire::Message& m) {
      std::vector<std::vector<std::string>> replies;
      if (std::holds_alternative<wire::Hello>(m)) return std::vector<std::vector<std::string>>{Welcome()};
      const auto& b = std::get<wire::ExpertBatch>(m);
      std::vector<float> junk(8, -1.0f);
      wire::ExpertBatch stale = b;
      stale.rows = std::as_bytes(std::span<const float>(junk));
      replies.push_back(Echo(stale, b.request_id + 1000));  // an id it never sent
      replies.push_back(Echo(stale, 0));
      replies.push_back(Echo(b, b.request_id));
      return replies;
    });
    eo.endpoint = node.endpoint;
    auto ex = std::move(RemoteExecutor::Create(eo)).value();
    ASSERT_TRUE(ex->Connect().ok());
    for (int i = 0; i < 3; ++i) {
      std::fill(out.begin(), out.end(), 0.0f);
      ASSERT_TRUE(ex->Start(call).ok());
      const Status st = ex->Finish();
      ASSERT_TRUE(st.ok()) << st.ToString();
      EXPECT_TRUE(out == rows);
    }
  }
  {  // An Error reply becomes a Status naming the node; a result that does not fit the call is refused.
    int n = 0;
    FakeNode node([&n](const wire::Message& m) {
      if (std::holds_alternative<wire::Hello>(m)) return std::vector<std::vector<std::string>>{Welcome()};
      const auto& b = std::get<wire::ExpertBatch>(m);
      switch (n++) {
        case 0: return std::vector<std::vector<std::string>>{
              wire::Encode(wire::Error{b.request_id, wire::ErrorCode::kUnavailable, "shutting down"})};
        case 1: return std::vector<std::vector<std::string>>{Echo(b, b.request_id, {1, 1})};
        default: return std::vector<std::vector<std::string>>{};  // silence
      }
    });
    eo.endpoint = node.endpoint;
    auto ex = std::move(RemoteExecutor::Create(eo)).value();
    ASSERT_TRUE(ex->Connect().ok());
    ASSERT_TRUE(ex->Start(call).ok());
    Status st = ex->Finish();
    EXPECT_EQ(st.code(), StatusCode::kUnavailable) << st.ToString();
    EXPECT_TRUE(Contains(st.message(), "node 'fake'") && Contains(st.message(), "shutting down")) << st.message();
    ASSERT_TRUE(ex->Start(call).ok());
    st = ex->Finish();
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.ToString();
    ASSERT_TRUE(ex->Start(call).ok());
    const auto t0 = Clock::now();
    st = ex->Finish();
    EXPECT_EQ(st.code(), StatusCode::kUnavailable) << st.ToString();
    EXPECT_TRUE(Contains(st.message(), "did not answer layer 0 within 300 ms")) << st.message();
    EXPECT_GE(Clock::now() - t0, std::chrono::milliseconds(300));
  }
  {  // Nobody listening: Connect gives up after the timeout.
    eo.endpoint = "tcp://127.0.0.1:1";
    const Status st = (*RemoteExecutor::Create(eo))->Connect();
    EXPECT_EQ(st.code(), StatusCode::kUnavailable) << st.ToString();
  }
}

}  // namespace
}  // namespace brickrt
