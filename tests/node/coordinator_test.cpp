// The coordinator (issue #6): generate requests from concurrent clients give exactly what the served
// manifest gives alone and name it; swaps (explicit, rollback, a tag move) take effect between steps
// without failing a request; running sequences finish on the manifest they started on unless the swap
// says now; a failed load keeps the old model serving and says why.
#include "node/coordinator.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <thread>

#include "bricks/generator.h"
#include "node/serve_client.h"
#include "node/submodel.h"
#include "registry/test_model.h"
#include "serve_test_util.h"
#include "tests/registry/registry_test_util.h"

namespace brickrt {
namespace {

using std::chrono::milliseconds;
using testing::Request;

class CoordinatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = ::testing::TempDir() + "/coordinator_test_" + std::to_string(getpid()) + ".db";
    auto reg = Registry::Open(path_);
    ASSERT_TRUE(reg.ok()) << reg.status().ToString();
    reg_ = std::move(reg).value();
    for (uint64_t seed : {5, 6}) {  // m@1, m@2: every brick differs
      auto made = MakeRandomModel(testing::SmallServedModel(seed));
      ASSERT_TRUE(made.ok());
      ASSERT_TRUE(reg_->Import("m", made->first, made->second, Visibility::kShared, "t").ok());
    }
  }
  void TearDown() override {
    reg_.reset();
    for (const char* suffix : {"", "-wal", "-shm"}) std::remove((path_ + suffix).c_str());
  }

  std::unique_ptr<Coordinator> Start(const std::string& model, int max_batch = 4, int64_t max_context = 256) {
    CoordinatorOptions o;
    o.registry_path = path_;
    o.listen = "tcp://127.0.0.1:*";
    o.model = model;
    o.max_batch = max_batch;
    o.max_context = max_context;
    o.follow_every = milliseconds(50);
    auto c = Coordinator::Start(o);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? std::move(c).value() : nullptr;
  }

  std::unique_ptr<ServeClient> Client(const Coordinator& c) {
    auto client = ServeClient::Connect(c.endpoint(), milliseconds(20000));
    EXPECT_TRUE(client.ok());
    return std::move(client).value();
  }

  std::vector<int32_t> Alone(const std::string& ref, const serve::GenerateRequest& r) {
    return testing::GenerateAlone(*reg_, ref, r);
  }

  std::string path_;
  std::unique_ptr<Registry> reg_;
};

// `device: cuda:0` in a coordinator config: every model it loads runs on that GPU. Without one the start
// fails with one error naming the device (never a silent CPU fallback); with one it serves.
TEST_F(CoordinatorTest, ADeviceOfThisMachineServesOrSaysWhyNot) {
  CoordinatorOptions o;
  o.registry_path = path_;
  o.listen = "tcp://127.0.0.1:*";
  o.model = "m@1";
  o.device = DeviceRef{DeviceRef::Kind::kCuda, 0};
  auto c = Coordinator::Start(o);
  if (!c.ok()) {
    EXPECT_NE(c.status().message().find("cuda:0"), std::string::npos) << c.status().ToString();
    return;
  }
  auto client = Client(**c);
  serve::GenerateRequest req;
  req.prompt = {1, 2, 3};
  req.max_new_tokens = 4;
  req.temperature = 0;
  auto reply = client->Generate(req);
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  EXPECT_EQ(reply->generated.size(), 4u);
}

TEST_F(CoordinatorTest, ConcurrentClientsGetWhatTheManifestGivesAlone) {
  auto c = Start("m@1");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->manifest_at_start(), "m@1");
  // 6 clients at once on 4 slots: batched steps, a queue, greedy and sampled requests.
  std::vector<serve::GenerateRequest> reqs;
  for (int i = 0; i < 6; ++i) {
    reqs.push_back(Request({static_cast<int32_t>(3 + i), 1, 4, 1, 5}, static_cast<uint32_t>(8 + 3 * i),
                           i % 2 == 0 ? 0.0f : 0.8f, static_cast<uint64_t>(100 + i)));
  }
  std::vector<Result<serve::GenerateReply>> replies(reqs.size(), Internal("not run"));
  std::vector<std::thread> threads;
  for (size_t i = 0; i < reqs.size(); ++i) {
    threads.emplace_back([&, i] { replies[i] = Client(*c)->Generate(reqs[i]); });
  }
  for (auto& t : threads) t.join();
  for (size_t i = 0; i < reqs.size(); ++i) {
    ASSERT_TRUE(replies[i].ok()) << replies[i].status().ToString();
    EXPECT_EQ(replies[i]->manifest, "m@1");
    EXPECT_EQ(replies[i]->generated, Alone("m@1", reqs[i])) << "request " << i;
  }
}

TEST_F(CoordinatorTest, BadRequestsGetOneLineErrorsAndTheCoordinatorKeepsServing) {
  auto c = Start("m@1");
  ASSERT_NE(c, nullptr);
  auto client = Client(*c);
  auto bad_token = client->Generate(Request({3, 999}, 4));
  ASSERT_FALSE(bad_token.ok());
  EXPECT_EQ(bad_token.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad_token.status().message().find("token id 999 is outside the vocabulary [0, 257) of m@1"),
            std::string::npos)
      << bad_token.status().message();
  auto too_long = client->Generate(Request({3}, 1000));
  ASSERT_FALSE(too_long.ok());
  EXPECT_NE(too_long.status().message().find("exceed the context of 256"), std::string::npos);
  auto bad_sampling = client->Generate(Request({3}, 4, -1.0f));
  ASSERT_FALSE(bad_sampling.ok());
  EXPECT_EQ(bad_sampling.status().code(), StatusCode::kInvalidArgument);
  auto ok = client->Generate(Request({3, 1}, 4));
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->generated.size(), 4u);
}

TEST_F(CoordinatorTest, SwapsServeNewRequestsFromTheNewManifestAndRollBack) {
  auto c = Start("m@1");
  ASSERT_NE(c, nullptr);
  auto client = Client(*c);
  const serve::GenerateRequest r = Request({7, 7, 7}, 10);
  const std::vector<int32_t> v1 = Alone("m@1", r), v2 = Alone("m@2", r);
  ASSERT_NE(v1, v2);
  auto swapped = client->Swap({0, "m@2", false});
  ASSERT_TRUE(swapped.ok()) << swapped.status().ToString();
  EXPECT_EQ(swapped->manifest, "m@2");
  EXPECT_EQ(swapped->previous, "m@1");
  auto after = client->Generate(r);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->manifest, "m@2");
  EXPECT_EQ(after->generated, v2);
  auto back = client->Swap({0, "m@1", false});
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  auto rolled = client->Generate(r);
  ASSERT_TRUE(rolled.ok());
  EXPECT_EQ(rolled->manifest, "m@1");
  EXPECT_EQ(rolled->generated, v1);
  auto status = client->Status();
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->manifest, "m@1");
  EXPECT_EQ(status->swaps, 2u);
}

TEST_F(CoordinatorTest, AFailedSwapKeepsTheOldManifestServingAndSaysWhy) {
  auto c = Start("m@1");
  ASSERT_NE(c, nullptr);
  auto client = Client(*c);
  auto unknown = client->Swap({0, "nope@3", false});
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), StatusCode::kNotFound) << unknown.status().ToString();
  EXPECT_NE(unknown.status().message().find("still serving m@1"), std::string::npos) << unknown.status().message();
  auto r = client->Generate(Request({1, 2}, 3));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->manifest, "m@1");

  // m@3: m@1 with one expert at a new version whose stored payload is damaged.
  auto made = MakeRandomModel(testing::SmallServedModel(5));
  ASSERT_TRUE(made.ok());
  for (BrickData& b : made->second) {
    if (b.Name() == "L0.mlp.E1") b.tensors[0].second.mutable_data_as<float>()[0] += 1.0f;
  }
  ASSERT_TRUE(reg_->Import("m", made->first, made->second, Visibility::kShared, "t").ok());
  auto m3 = reg_->ResolveModel("m@3");
  ASSERT_TRUE(m3.ok());
  auto bricks = reg_->ManifestBricks(*m3);
  ASSERT_TRUE(bricks.ok());
  for (const BrickRecord& b : *bricks)
    if (b.RelativeName() == "L0.mlp.E1") testing::RawDb(path_).FlipBlobByte(b.digest, 16);
  auto damaged = client->Swap({0, "m@3", false});
  ASSERT_FALSE(damaged.ok());
  EXPECT_NE(damaged.status().message().find("swap to m@3 failed; still serving m@1"), std::string::npos)
      << damaged.status().message();
  EXPECT_NE(damaged.status().message().find("digest mismatch"), std::string::npos) << damaged.status().message();
  auto still = client->Generate(Request({1, 2}, 3));
  ASSERT_TRUE(still.ok());
  EXPECT_EQ(still->manifest, "m@1");
  EXPECT_EQ(still->generated, r->generated);
}

// A sequence running when the swap lands finishes on the manifest it started on; with `now` it moves
// and the reply names the new manifest: its tokens are m@1's up to some point and m@2's continuation
// of the history after it.
TEST_F(CoordinatorTest, RunningSequencesFinishOnTheirManifestUnlessTheSwapSaysNow) {
  for (const bool now : {false, true}) {
    SCOPED_TRACE(now ? "swap --now" : "swap");
    auto c = Start("m@1", 4, 2048);
    ASSERT_NE(c, nullptr);
    const serve::GenerateRequest r = Request({9, 8, 7}, 1500);  // long enough to outlast the swap's load
    Result<serve::GenerateReply> long_reply = Internal("not run");
    std::thread gen([&] { long_reply = Client(*c)->Generate(r); });
    // Wait until it runs, then swap.
    auto client = Client(*c);
    for (int i = 0; i < 500; ++i) {
      auto s = client->Status();
      ASSERT_TRUE(s.ok());
      if (s->sequences == 1) break;
      std::this_thread::sleep_for(milliseconds(2));
    }
    auto swapped = client->Swap({0, "m@2", now});
    ASSERT_TRUE(swapped.ok()) << swapped.status().ToString();
    auto during = client->Status();
    ASSERT_TRUE(during.ok());
    gen.join();
    ASSERT_TRUE(long_reply.ok()) << long_reply.status().ToString();
    ASSERT_EQ(long_reply->generated.size(), 1500u);
    const std::vector<int32_t> v1 = Alone("m@1", r);
    if (!now) {
      EXPECT_EQ(long_reply->manifest, "m@1");
      EXPECT_EQ(long_reply->generated, v1);
      continue;
    }
    EXPECT_EQ(long_reply->manifest, "m@2");
    const std::vector<int32_t>& got = long_reply->generated;
    size_t k = 0;  // tokens generated on m@1
    while (k < got.size() && got[k] == v1[k]) ++k;
    ASSERT_LT(k, got.size()) << "the swap landed before the sequence ended";
    serve::GenerateRequest rest = r;
    rest.prompt.insert(rest.prompt.end(), got.begin(), got.begin() + static_cast<std::ptrdiff_t>(k));
    rest.max_new_tokens = static_cast<uint32_t>(got.size() - k);
    // The first token after the move may also equal m@1's by chance; either split point must explain it.
    const std::vector<int32_t> tail = Alone("m@2", rest);
    bool explained = std::equal(tail.begin(), tail.end(), got.begin() + static_cast<std::ptrdiff_t>(k));
    if (!explained && k > 0) {
      serve::GenerateRequest earlier = r;
      earlier.prompt.insert(earlier.prompt.end(), got.begin(), got.begin() + static_cast<std::ptrdiff_t>(k - 1));
      earlier.max_new_tokens = static_cast<uint32_t>(got.size() - k + 1);
      const std::vector<int32_t> t2 = Alone("m@2", earlier);
      explained = std::equal(t2.begin(), t2.end(), got.begin() + static_cast<std::ptrdiff_t>(k - 1));
    }
    EXPECT_TRUE(explained);
  }
}

TEST_F(CoordinatorTest, FollowsATagWithinASecond) {
  ASSERT_TRUE(reg_->Tag("m@1", "stable").ok());
  auto c = Start("m:stable");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->manifest_at_start(), "m@1");
  auto client = Client(*c);
  ASSERT_TRUE(reg_->Tag("m@2", "stable").ok());
  const auto t0 = std::chrono::steady_clock::now();
  std::string serving;
  while (std::chrono::steady_clock::now() - t0 < std::chrono::seconds(1)) {
    auto s = client->Status();
    ASSERT_TRUE(s.ok());
    EXPECT_EQ(s->following, "m:stable");
    serving = s->manifest;
    if (serving == "m@2") break;
    std::this_thread::sleep_for(milliseconds(10));
  }
  EXPECT_EQ(serving, "m@2");
  auto r = client->Generate(Request({4, 4}, 5));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->manifest, "m@2");
}

}  // namespace
}  // namespace brickrt
