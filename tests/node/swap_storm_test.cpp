// Swaps under load (issue #6): four generation streams keep a coordinator busy while 50 swaps in a
// row change what it serves — new versions up and down, one brick changed, experts removed, experts
// grown, rolled back. No request fails, every reply names the manifest it ran on, and its tokens are exactly what
// that manifest generates alone.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <map>
#include <mutex>
#include <thread>

#include "bricks/generator.h"
#include "core/submodel_spec.h"
#include "node/coordinator.h"
#include "node/serve_client.h"
#include "node/submodel.h"
#include "registry/grow.h"
#include "registry/test_model.h"
#include "serve_test_util.h"

namespace brickrt {
namespace {

using std::chrono::milliseconds;

class SwapStormTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = ::testing::TempDir() + "/swap_storm_test_" + std::to_string(getpid()) + ".db";
    auto reg = Registry::Open(path_);
    ASSERT_TRUE(reg.ok()) << reg.status().ToString();
    reg_ = std::move(reg).value();
    auto v1 = MakeRandomModel(testing::SmallServedModel(5, DType::kBF16));
    auto v2 = MakeRandomModel(testing::SmallServedModel(6, DType::kBF16));
    ASSERT_TRUE(v1.ok() && v2.ok());
    ASSERT_TRUE(reg_->Import("m", v1->first, v1->second, Visibility::kShared, "v1").ok());  // m@1
    ASSERT_TRUE(reg_->Import("m", v2->first, v2->second, Visibility::kShared, "v2").ok());  // m@2: all new
    // m@3: m@1 with one MLP expert brick at a new version of the same shape.
    std::vector<BrickData> one_changed = v1->second;
    for (BrickData& b : one_changed) {
      if (b.Name() != "L1.mlp.E2") continue;
      Tensor& w1 = b.tensors[0].second;
      auto* bytes = static_cast<uint16_t*>(w1.mutable_data());
      for (int64_t i = 0; i < w1.numel(); i += 3) bytes[i] ^= 0x0040;  // flip a mantissa bit of every third weight
    }
    auto m3 = reg_->Import("m", v1->first, one_changed, Visibility::kShared, "v3");
    ASSERT_TRUE(m3.ok()) << m3.status().ToString();
    // m-small@1: m@1 with experts removed.
    auto spec = ParseSubmodelSpec("model: m@1\nname: m-small\nexperts:\n  mlp:\n    drop: {0: [1, 4], 1: [0]}\n",
                                  "small.yaml");
    ASSERT_TRUE(spec.ok());
    auto c = Compose(*reg_, *spec);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    ASSERT_TRUE(SaveComposition(*reg_, *c).ok());
    // m-grown@1: m@1 with two more MLP experts in layer 1 (trained elsewhere: v2's first two, with
    // their router rows).
    GrowRequest grow;
    grow.model_ref = "m@1";
    grow.layer = 1;
    grow.experts_path = path_ + ".experts.safetensors";
    grow.router_path = path_ + ".router.safetensors";
    grow.new_name = "m-grown";
    ASSERT_TRUE(WriteGrowExperts(grow.experts_path, v2->second, 1, false, 0, 2).ok());
    ASSERT_TRUE(WriteGrowRouterRows(grow.router_path, v2->second, 1, false, 0, 2).ok());
    auto grown = GrowModel(*reg_, grow);
    ASSERT_TRUE(grown.ok()) << grown.status().ToString();
  }
  void TearDown() override {
    reg_.reset();
    for (const char* suffix : {"", "-wal", "-shm", ".experts.safetensors", ".router.safetensors"})
      std::remove((path_ + suffix).c_str());
  }

  std::vector<int32_t> Alone(const std::string& ref, const serve::GenerateRequest& r) {
    return testing::GenerateAlone(*reg_, ref, r);
  }

  std::string path_;
  std::unique_ptr<Registry> reg_;
};

TEST_F(SwapStormTest, FiftySwapsUnderFourStreamsFailNothingAndEveryReplyIsItsManifests) {
  CoordinatorOptions o;
  o.registry_path = path_;
  o.listen = "tcp://127.0.0.1:*";
  o.model = "m@1";
  o.max_batch = 4;
  o.max_context = 128;
  auto coordinator = Coordinator::Start(o);
  ASSERT_TRUE(coordinator.ok()) << coordinator.status().ToString();
  const std::string endpoint = (*coordinator)->endpoint();

  // Six request shapes (greedy and sampled, short and long), cycled by four streams.
  std::vector<serve::GenerateRequest> shapes;
  for (int i = 0; i < 6; ++i) {
    serve::GenerateRequest r;
    r.prompt = {static_cast<int32_t>(10 + i), 3, static_cast<int32_t>(200 - i)};
    r.max_new_tokens = static_cast<uint32_t>(6 + 5 * i);
    r.temperature = i % 2 == 0 ? 0.0f : 0.9f;
    r.seed = static_cast<uint64_t>(i);
    r.stop_at_eos = false;
    shapes.push_back(r);
  }
  struct Done {
    size_t shape;
    Result<serve::GenerateReply> reply;
  };
  std::mutex mu;
  std::vector<Done> done;
  std::atomic<bool> stop{false};
  std::vector<std::thread> streams;
  for (int s = 0; s < 4; ++s) {
    streams.emplace_back([&, s] {
      auto client = ServeClient::Connect(endpoint, milliseconds(30000));
      ASSERT_TRUE(client.ok());
      for (size_t i = static_cast<size_t>(s); !stop.load(); i += 4) {
        const size_t shape = i % shapes.size();
        auto reply = (*client)->Generate(shapes[shape]);
        std::lock_guard<std::mutex> lock(mu);
        done.push_back({shape, std::move(reply)});
      }
    });
  }
  auto swapper = ServeClient::Connect(endpoint, milliseconds(30000));
  ASSERT_TRUE(swapper.ok());
  // Up and down versions, one brick changed, experts removed, grown, and back (rollback).
  const std::vector<std::string> targets = {"m@2", "m@3", "m-small", "m-grown", "m@1", "m@3", "m-grown@1", "m@2",
                                            "m@1", "m-small@1"};
  for (int i = 0; i < 50; ++i) {
    auto swapped = (*swapper)->Swap({0, targets[static_cast<size_t>(i) % targets.size()], false});
    ASSERT_TRUE(swapped.ok()) << "swap " << i << ": " << swapped.status().ToString();
    std::this_thread::sleep_for(milliseconds(5));  // let some requests land on each manifest
  }
  stop.store(true);
  for (auto& t : streams) t.join();

  std::map<std::string, int> per_manifest;
  std::map<std::pair<std::string, size_t>, std::vector<int32_t>> alone;
  for (const Done& d : done) {
    ASSERT_TRUE(d.reply.ok()) << d.reply.status().ToString();
    const std::string& m = d.reply->manifest;
    ++per_manifest[m];
    auto key = std::make_pair(m, d.shape);
    if (!alone.count(key)) alone[key] = Alone(m, shapes[d.shape]);
    EXPECT_EQ(d.reply->generated, alone[key]) << m << ", request shape " << d.shape;
  }
  EXPECT_GE(done.size(), 20u);
  EXPECT_GE(per_manifest.size(), 3u) << "replies came from several manifests";
  for (const auto& [m, n] : per_manifest) std::printf("  %s: %d replies\n", m.c_str(), n);
  auto status = (*swapper)->Status();
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->swaps, 50u);
}

}  // namespace
}  // namespace brickrt
