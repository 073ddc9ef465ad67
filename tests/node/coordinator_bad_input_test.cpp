// A coordinator under bad input (DESIGN.md §5 "Reliable"): thousands of malformed messages from a raw
// DEALER socket (random bytes, cut and mutated frames, other versions, replies, several frames) each
// get exactly the Error reply serve::ErrorReplyFor says (request id and code) or nothing, while a
// well-formed client keeps getting the answer the manifest gives alone; oversized frames and clients
// that go away before their reply do not stop it either.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <deque>
#include <limits>
#include <map>
#include <thread>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "bricks/generator.h"
#include "core/log.h"
#include "core/rng.h"
#include "node/coordinator.h"
#include "node/serve_client.h"
#include "node/submodel.h"
#include "serve_test_util.h"
#include "registry/test_model.h"
// Frames the encoder never writes (a body type without its table) are built with the generated code.
#include "schemas/serve_generated.h"

namespace brickrt {
namespace {

using std::chrono::milliseconds;
using testing::Request;
constexpr uint64_t kProbeBase = 0xb0b0000000000000ull;  // request ids of the probes that delimit replies

// A client that sends whatever it is given: a DEALER, so the coordinator's ROUTER sees [identity,
// frames...] exactly as from a ServeClient.
class RawPeer {
 public:
  RawPeer(zmq::context_t& ctx, const std::string& endpoint) : socket_(ctx, zmq::socket_type::dealer) {
    socket_.set(zmq::sockopt::linger, 0);
    socket_.connect(endpoint);
  }
  void Send(const std::vector<std::string>& parts) {
    for (size_t i = 0; i < parts.size(); ++i) {
      socket_.send(zmq::buffer(parts[i]), i + 1 < parts.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
    }
  }
  // The next reply frame, or nullopt after `timeout`. A reply is always one frame.
  std::optional<std::string> Recv(milliseconds timeout) {
    zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, timeout) == 0) return std::nullopt;
    std::vector<zmq::message_t> parts;
    if (!zmq::recv_multipart(socket_, std::back_inserter(parts), zmq::recv_flags::dontwait)) return std::nullopt;
    EXPECT_EQ(parts.size(), 1u);
    return parts.empty() ? std::string() : parts[0].to_string();
  }
  void Close() { socket_.close(); }

 private:
  zmq::socket_t socket_;
};

// What the flood is made from: requests and replies, valid as encoded.
std::vector<serve::Message> BaseMessages() {
  serve::GenerateRequest greedy{0x5151, {3, 1, 4}, 4};
  greedy.stop_at_eos = false;
  serve::GenerateRequest sampled{0x5252, {9, 2, 6, 5}, 3, 0.8f, 5, 0.9f, 77, false};
  return {greedy,
          sampled,
          serve::SwapRequest{0x5353, "nosuch@3"},
          serve::StatusRequest{0x5454},
          serve::GenerateReply{0x5555, "m@1", {1, 2}, 0.1, 0.2, 0.3},
          serve::SwapReply{0x5656, "m@1", "m@0", 0.5},
          serve::StatusReply{0x5757, "m@1", "", {"m@1"}, 1, 0, 0},
          serve::Error{0x5858, serve::ErrorCode::kNotFound, "nothing"}};
}

bool IsReply(const serve::Message& m) {
  return std::holds_alternative<serve::GenerateReply>(m) || std::holds_alternative<serve::SwapReply>(m) ||
         std::holds_alternative<serve::StatusReply>(m) || std::holds_alternative<serve::Error>(m);
}

// One malformed (or oddly formed) message: its frames, and whether its answer is immediate and known
// (anything that does not decode, a status request, a reply) or comes later from the model or the
// loader (a generate or swap request that decodes).
struct Bad {
  std::vector<std::string> parts;
  bool deferred = false;
};

Bad MakeBad(Rng& rng, const std::vector<serve::Message>& base) {
  auto below = [&rng](size_t n) { return n == 0 ? 0 : static_cast<size_t>(rng.Next() % n); };
  const serve::Message& m = base[below(base.size())];
  std::string f;
  std::vector<std::string> parts;
  switch (below(8)) {
    case 0: {  // random bytes, half with the identifier
      f.resize(below(300));
      for (char& c : f) c = static_cast<char>(rng.Next());
      if (below(2) == 0 && f.size() >= 8) std::memcpy(f.data() + 4, "BRKS", 4);
      break;
    }
    case 1: {  // several edits
      f = serve::Encode(m);
      for (size_t e = 0, n = 1 + below(4); e < n; ++e) {
        switch (below(4)) {
          case 0:
            f[below(f.size())] ^= static_cast<char>(1u << below(8));
            break;
          case 1:
            f[below(f.size())] = static_cast<char>(rng.Next());
            break;
          case 2:
            f.resize(1 + below(f.size()));
            break;
          case 3:
            f.append(1 + below(8), static_cast<char>(rng.Next()));
            break;
        }
      }
      break;
    }
    case 2:  // cut short
      f = serve::Encode(m);
      f.resize(below(f.size()));
      break;
    case 3: {  // another protocol version
      const uint32_t versions[] = {0, 2, 7, std::numeric_limits<uint32_t>::max()};
      f = serve::Encode(m, versions[below(4)]);
      break;
    }
    case 4:  // a reply, or a request, as it is
      f = serve::Encode(m);
      break;
    case 5: {  // more than one frame (a client sends exactly one): never answered
      parts = {serve::Encode(m), below(2) == 0 ? std::string() : serve::Encode(m)};
      if (below(2) == 0) parts.push_back(std::string(below(20), 'x'));
      return Bad{parts, false};
    }
    case 6: {  // one byte changed
      f = serve::Encode(m);
      f[below(f.size())] = static_cast<char>(rng.Next());
      break;
    }
    case 7: {  // a body type without its table (the FlatBuffers verifier lets that through)
      flatbuffers::FlatBufferBuilder b;
      b.Finish(serve::fb::CreateHeader(b, below(4) == 0 ? 2 : serve::kProtocolVersion, rng.Next(),
                                       static_cast<serve::fb::Body>(below(10))),
               serve::fb::HeaderIdentifier());
      f.assign(reinterpret_cast<const char*>(b.GetBufferPointer()), b.GetSize());
      break;
    }
  }
  Bad bad{{f}, false};
  Result<serve::Message> decoded = serve::Decode(f, {});
  bad.deferred = decoded.ok() && (std::holds_alternative<serve::GenerateRequest>(*decoded) ||
                                  std::holds_alternative<serve::SwapRequest>(*decoded));
  return bad;
}

// The replies the coordinator must send at once for `bad` (a non-deferred message), in order.
std::vector<serve::Message> ExpectedReplies(const Bad& bad) {
  if (bad.parts.size() != 1) return {};
  const std::string& f = bad.parts[0];
  Result<serve::Message> decoded = serve::Decode(f, {});
  if (!decoded.ok()) {
    std::optional<serve::Error> e = serve::ErrorReplyFor(f, decoded.status(), {});
    if (!e) return {};
    return {*e};
  }
  if (const auto* s = std::get_if<serve::StatusRequest>(&*decoded)) {
    serve::StatusReply r;
    r.request_id = s->request_id;  // the rest depends on what runs: only the id is compared
    return {r};
  }
  EXPECT_TRUE(IsReply(*decoded));
  return {serve::MakeError(serve::RequestIdOf(*decoded), serve::ErrorCode::kInvalidArgument,
                           "a coordinator takes requests, not replies")};
}

class CoordinatorBadInputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Hundreds of failed swaps to mutated names would each log a warning.
    log::SetLevel(log::Level::kError);
    path_ = ::testing::TempDir() + "/coordinator_bad_input_test_" + std::to_string(getpid()) + ".db";
    auto reg = Registry::Open(path_);
    ASSERT_TRUE(reg.ok()) << reg.status().ToString();
    reg_ = std::move(reg).value();
    // One model only: no swap request of the flood can name anything that loads.
    auto made = MakeRandomModel(testing::SmallServedModel(5));
    ASSERT_TRUE(made.ok());
    ASSERT_TRUE(reg_->Import("m", made->first, made->second, Visibility::kShared, "t").ok());
  }
  void TearDown() override {
    log::SetLevel(log::Level::kWarn);
    coordinator_.reset();
    reg_.reset();
    for (const char* suffix : {"", "-wal", "-shm"}) std::remove((path_ + suffix).c_str());
  }

  // The coordinator under test, serving m@1 with 4 slots of `max_context` tokens.
  void Start(int64_t max_context) {
    CoordinatorOptions co;
    co.registry_path = path_;
    co.listen = "tcp://127.0.0.1:*";
    co.model = "m@1";
    co.max_batch = 4;
    co.max_context = max_context;
    auto c = Coordinator::Start(co);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    coordinator_ = std::move(c).value();
  }

  std::unique_ptr<ServeClient> Client(milliseconds timeout = milliseconds(20000)) {
    auto client = ServeClient::Connect(coordinator_->endpoint(), timeout);
    EXPECT_TRUE(client.ok());
    return std::move(client).value();
  }

  // What m@1 generates for r on its own: one sequence, in process.
  std::vector<int32_t> Alone(const serve::GenerateRequest& r) { return testing::GenerateAlone(*reg_, "m@1", r); }

  // Waits until nothing runs or waits on the coordinator.
  void ExpectDrained(ServeClient& client) {
    serve::StatusReply last;
    for (int i = 0; i < 1000; ++i) {
      auto s = client.Status();
      ASSERT_TRUE(s.ok()) << s.status().ToString();
      last = *s;
      if (s->sequences == 0 && s->queued == 0) break;
      std::this_thread::sleep_for(milliseconds(10));
    }
    EXPECT_EQ(last.sequences, 0u);
    EXPECT_EQ(last.queued, 0u);
    EXPECT_EQ(last.manifest, "m@1");
    EXPECT_TRUE(last.running.empty());
  }

  std::string path_;
  std::unique_ptr<Registry> reg_;
  std::unique_ptr<Coordinator> coordinator_;
};

TEST_F(CoordinatorBadInputTest, AFloodOfMalformedMessagesGetsTheRightErrorsAndGoodClientsTheRightAnswers) {
  // A short context: mutated requests asking for many tokens are refused rather than run.
  ASSERT_NO_FATAL_FAILURE(Start(256));
  const serve::GenerateRequest greedy = Request({7, 7, 7}, 12);
  const serve::GenerateRequest sampled = Request({2, 4, 8, 16}, 10, 0.9f, 1234);
  const std::vector<int32_t> want_greedy = Alone(greedy), want_sampled = Alone(sampled);
  {
    auto before = Client()->Generate(greedy);
    ASSERT_TRUE(before.ok()) << before.status().ToString();
    EXPECT_EQ(before->generated, want_greedy);
  }

  // A well-formed client all through the flood.
  std::atomic<bool> flooding{true};
  std::atomic<int> good_calls{0}, good_failures{0};
  std::thread good;
  struct Stop {  // an ASSERT below returns early: the good client still stops and joins
    std::atomic<bool>& flooding;
    std::thread& t;
    ~Stop() {
      flooding.store(false);
      if (t.joinable()) t.join();
    }
  } stop{flooding, good};
  good = std::thread([&] {
    auto client = Client();
    while (flooding.load()) {
      for (const auto* r : {&greedy, &sampled}) {
        auto reply = client->Generate(*r);
        const bool right =
            reply.ok() && reply->manifest == "m@1" && reply->generated == (r == &greedy ? want_greedy : want_sampled);
        if (!right) {
          ++good_failures;
          ADD_FAILURE() << (reply.ok() ? "wrong tokens from " + reply->manifest : reply.status().ToString());
        }
        ++good_calls;
      }
    }
  });

  zmq::context_t ctx(1);
  RawPeer strict(ctx, coordinator_->endpoint());  // answers checked one by one
  RawPeer loose(ctx, coordinator_->endpoint());   // well-formed generate and swap requests from the flood
  Rng rng(6);
  const std::vector<serve::Message> base = BaseMessages();
  int sent = 0, answered = 0, dropped = 0;
  std::map<uint64_t, int> loose_waiting;  // request id -> replies still due
  int loose_sent = 0;
  constexpr int kMessages = 6000, kBatch = 64;
  for (int start = 0; start < kMessages; start += kBatch) {
    // A batch of bad messages, each followed by a status request (the probe): the coordinator answers
    // one client in order, so the replies between two probes are the answers to one bad message.
    std::vector<std::vector<serve::Message>> expected;
    for (int i = start; i < start + kBatch;) {
      Bad bad = MakeBad(rng, base);
      if (bad.deferred) {
        const serve::Message m = serve::Decode(bad.parts[0], {}).value();
        ++loose_waiting[serve::RequestIdOf(m)];
        ++loose_sent;
        loose.Send(bad.parts);
        continue;
      }
      strict.Send(bad.parts);
      strict.Send({serve::Encode(serve::StatusRequest{kProbeBase + static_cast<uint64_t>(i)})});
      expected.push_back(ExpectedReplies(bad));
      ++sent;
      ++i;
    }
    for (int i = 0; i < kBatch; ++i) {
      const uint64_t probe = kProbeBase + static_cast<uint64_t>(start + i);
      std::vector<serve::Message> got;
      while (true) {
        std::optional<std::string> frame = strict.Recv(milliseconds(10000));
        ASSERT_TRUE(frame.has_value()) << "no answer to probe " << start + i;
        Result<serve::Message> m = serve::Decode(*frame, {});
        ASSERT_TRUE(m.ok()) << m.status().ToString();
        if (std::holds_alternative<serve::StatusReply>(*m) && serve::RequestIdOf(*m) == probe) break;
        got.push_back(std::move(m).value());
      }
      const std::vector<serve::Message>& want = expected[static_cast<size_t>(i)];
      ASSERT_EQ(got.size(), want.size()) << "message " << start + i;
      if (want.empty()) {
        ++dropped;
        continue;
      }
      ++answered;
      if (const auto* s = std::get_if<serve::StatusReply>(&want[0])) {
        ASSERT_TRUE(std::holds_alternative<serve::StatusReply>(got[0])) << "message " << start + i;
        EXPECT_EQ(std::get<serve::StatusReply>(got[0]).request_id, s->request_id);
        EXPECT_EQ(std::get<serve::StatusReply>(got[0]).manifest, "m@1");
      } else {
        ASSERT_TRUE(std::holds_alternative<serve::Error>(got[0])) << "message " << start + i;
        const auto& e = std::get<serve::Error>(got[0]);
        const auto& w = std::get<serve::Error>(want[0]);
        EXPECT_EQ(e.request_id, w.request_id) << "message " << start + i;
        EXPECT_EQ(e.code, w.code) << "message " << start + i << ": " << e.message;
        EXPECT_EQ(e.message, w.message);
      }
    }
  }
  // Every well-formed request of the flood gets exactly one answer: tokens from m@1, or an error that
  // says why (a token outside the vocabulary, a context too long, a bad sampling value, a full queue, a
  // swap to nothing). Never an internal error.
  int loose_answered = 0;
  while (loose_answered < loose_sent) {
    std::optional<std::string> frame = loose.Recv(milliseconds(20000));
    ASSERT_TRUE(frame.has_value()) << loose_answered << " of " << loose_sent << " requests answered";
    Result<serve::Message> m = serve::Decode(*frame, {});
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    const uint64_t id = serve::RequestIdOf(*m);
    ASSERT_GT(loose_waiting[id], 0) << "an answer to request " << id << " nobody is waiting for";
    --loose_waiting[id];
    ++loose_answered;
    if (const auto* e = std::get_if<serve::Error>(&*m)) {
      EXPECT_NE(e->code, serve::ErrorCode::kInternal) << e->message;
      EXPECT_NE(e->code, serve::ErrorCode::kMalformed) << e->message;
    } else {
      ASSERT_TRUE(std::holds_alternative<serve::GenerateReply>(*m)) << "reply type " << m->index();
      EXPECT_EQ(std::get<serve::GenerateReply>(*m).manifest, "m@1");
    }
  }
  EXPECT_FALSE(strict.Recv(milliseconds(100)).has_value()) << "an answer nobody asked for";
  EXPECT_FALSE(loose.Recv(milliseconds(10)).has_value()) << "an answer nobody asked for";

  flooding.store(false);
  good.join();
  EXPECT_GT(good_calls.load(), 0);
  EXPECT_EQ(good_failures.load(), 0);
  EXPECT_GT(answered, 1000);
  EXPECT_GT(dropped, 1000);
  std::printf(
      "%d malformed messages: %d answered with an error or status, %d dropped; %d well-formed ones from "
      "the flood answered; %d good requests during it\n",
      sent, answered, dropped, loose_answered, good_calls.load());

  // And after it.
  auto client = Client();
  auto after = client->Generate(greedy);
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  EXPECT_EQ(after->generated, want_greedy);
  after = client->Generate(sampled);
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  EXPECT_EQ(after->generated, want_sampled);
  ExpectDrained(*client);
  auto status = client->Status();
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->swaps, 0u);
}

// Frames past the limit (ZeroMQ drops the connection that sent one), huge valid requests, and
// clients that disconnect with requests queued or running: none of it stops the coordinator, and
// the sequences of a client that went away finish and are freed.
TEST_F(CoordinatorBadInputTest, OversizedFramesAndClientsThatGoAwayDoNotStopIt) {
  // A long context: the work of a client that goes away outlasts it.
  ASSERT_NO_FATAL_FAILURE(Start(2048));
  const serve::GenerateRequest greedy = Request({1, 2, 3}, 8);
  const std::vector<int32_t> want = Alone(greedy);
  auto client = Client();
  zmq::context_t ctx(1);
  {
    RawPeer big(ctx, coordinator_->endpoint());
    serve::GenerateRequest huge{99, std::vector<int32_t>(300000, 1), 1};  // 1.2 MB: past max_frame_bytes
    big.Send({serve::Encode(huge)});
    big.Send({std::string((size_t{1} << 20) + 1, 'x')});
    EXPECT_FALSE(big.Recv(milliseconds(200)).has_value());
  }
  {
    // Within the frame limit, past the prompt limit: answered TooLarge.
    RawPeer raw(ctx, coordinator_->endpoint());
    raw.Send({serve::Encode(serve::GenerateRequest{100, std::vector<int32_t>(70000, 1), 1})});
    std::optional<std::string> frame = raw.Recv(milliseconds(5000));
    ASSERT_TRUE(frame.has_value());
    Result<serve::Message> m = serve::Decode(*frame, {});
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    ASSERT_TRUE(std::holds_alternative<serve::Error>(*m));
    EXPECT_EQ(std::get<serve::Error>(*m).request_id, 100u);
    EXPECT_EQ(std::get<serve::Error>(*m).code, serve::ErrorCode::kTooLarge);
    EXPECT_EQ(std::get<serve::Error>(*m).message, "prompt of 70000 tokens exceeds the limit of 65536");
  }
  auto r = client->Generate(greedy);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->generated, want);

  // A client whose sequences are running (and more queued) when it goes away: 8 x 2000 tokens take
  // far longer than the status requests below (no sleep between them) need to see them.
  {
    RawPeer gone(ctx, coordinator_->endpoint());
    for (int i = 0; i < 8; ++i) gone.Send({serve::Encode(Request({5, 6, static_cast<int32_t>(i)}, 2000))});
    bool running = false;
    for (int i = 0; i < 20000 && !running; ++i) {
      auto s = client->Status();
      ASSERT_TRUE(s.ok());
      running = s->sequences > 0;
    }
    EXPECT_TRUE(running);
    gone.Close();
  }
  // Clients that queue many requests and go away at once (some requests may never leave them).
  for (int k = 0; k < 5; ++k) {
    RawPeer gone(ctx, coordinator_->endpoint());
    for (uint64_t i = 0; i < 40; ++i) {
      serve::GenerateRequest g = Request({static_cast<int32_t>(i % 200), 3}, 20, 0.5f, i);
      g.request_id = i;
      gone.Send({serve::Encode(g)});
    }
    gone.Close();
  }
  // A ServeClient that gives up before its answer comes and is destroyed.
  {
    auto impatient = Client(milliseconds(1));
    auto timed_out = impatient->Generate(Request({4, 4}, 200));
    EXPECT_FALSE(timed_out.ok());
  }
  r = client->Generate(greedy);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->generated, want);
  ExpectDrained(*client);
  r = client->Generate(greedy);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->generated, want);
}

}  // namespace
}  // namespace brickrt
