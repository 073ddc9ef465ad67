// Hot swaps on a serving coordinator (issue #6), on this machine:
//   1. time from a swap command (brick swap) and from a tag move (brick tag) to the first token the
//      new manifest generates, while streams keep the coordinator busy;
//   2. decode-step latency (p50/p99) of the served model with no swaps vs during a storm of
//      back-to-back swaps between two versions.
// Usage: brick_bench_swap [--layers 4] [--d-model 1024] [--mlp-experts 8] [--attn-experts 4]
//                         [--streams 4] [--seconds 5] [--swaps 10] [--threads 2] [--n 32]
// Numbers go to docs/benchmarks.md; nothing here passes or fails.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_util.h"
#include "node/coordinator.h"
#include "node/serve_client.h"
#include "registry/registry.h"
#include "registry/test_model.h"

namespace brickrt::bench {
namespace {

using Clock = std::chrono::steady_clock;

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

struct Options {
  int layers = 4;
  int64_t d_model = 1024, mlp_experts = 8, attn_experts = 4;
  int streams = 4;
  double seconds = 5;
  int swaps = 10;
  int threads = 2;
  uint32_t n = 32;
};

Options Parse(int argc, char** argv) {
  Options o;
  ParseFlags(argc, argv,
             {{"--layers", &o.layers}, {"--d-model", &o.d_model}, {"--mlp-experts", &o.mlp_experts},
              {"--attn-experts", &o.attn_experts}, {"--streams", &o.streams}, {"--seconds", &o.seconds},
              {"--swaps", &o.swaps}, {"--threads", &o.threads}, {"--n", &o.n}});
  return o;
}

// Every step the coordinator runs, and when.
struct StepLog {
  std::mutex mu;
  struct Step {
    Clock::time_point at;
    std::string manifest;
    double seconds;
    bool decode;  // false: a step with a prefill in it
  };
  std::vector<Step> steps;
  void Add(const CoordinatorStep& s) {
    std::lock_guard<std::mutex> lock(mu);
    steps.push_back({Clock::now(), *s.manifest, s.seconds, s.tokens == s.sequences});
  }
  // The first prefill step of `manifest` at or after t0: the new deployment's first step, which
  // generates its first token (only the newest deployment admits requests, so an older deployment of
  // the same manifest still draining its sequences never prefills). Waits up to 60 s.
  Clock::time_point FirstOf(const std::string& manifest, Clock::time_point t0) {
    for (int i = 0; i < 60000; ++i) {
      {
        std::lock_guard<std::mutex> lock(mu);
        for (const Step& s : steps)
          if (s.at >= t0 && s.manifest == manifest && !s.decode) return s.at;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return t0;
  }
  std::vector<double> StepMsSince(Clock::time_point t0) {
    std::lock_guard<std::mutex> lock(mu);
    std::vector<double> v;
    for (const Step& s : steps)
      if (s.at >= t0 && s.decode) v.push_back(s.seconds * 1e3);
    return v;
  }
};

int Main(int argc, char** argv) {
  const Options o = Parse(argc, argv);
  const std::string path = "/tmp/brick_bench_swap_" + std::to_string(getpid()) + ".db";
  auto reg = Registry::Open(path);
  if (!reg.ok()) return std::fprintf(stderr, "%s\n", reg.status().ToString().c_str()), 1;
  int64_t bytes = 0;
  for (uint64_t seed : {1, 2}) {
    TestModelOptions t;
    t.layers = o.layers;
    t.d_model = o.d_model;
    t.ffd_hidden = 2 * o.d_model;
    t.gating_size = 256;
    t.vocab = 50295;
    t.attn_experts = o.attn_experts;
    t.mlp_experts = o.mlp_experts;
    t.seed = seed;
    auto made = MakeRandomModel(t);
    if (!made.ok()) return 1;
    bytes = 0;
    for (const BrickData& b : made->second) bytes += static_cast<int64_t>(b.nbytes());
    if (!(*reg)->Import("m", made->first, made->second, Visibility::kShared, "bench").ok()) return 1;
  }
  if (!(*reg)->Tag("m@1", "stable").ok()) return 1;
  std::printf("model: %d layers, d_model %lld, %lld MLP / %lld attention experts, BF16, %.0f MiB per version\n",
              o.layers, static_cast<long long>(o.d_model), static_cast<long long>(o.mlp_experts),
              static_cast<long long>(o.attn_experts), static_cast<double>(bytes) / (1 << 20));

  StepLog log;
  CoordinatorOptions co;
  co.registry_path = path;
  co.listen = "tcp://127.0.0.1:*";
  co.model = "m:stable";
  co.max_batch = o.streams;
  co.max_context = 512;
  co.threads = o.threads;
  co.on_step = [&log](const CoordinatorStep& s) { log.Add(s); };
  auto coordinator = Coordinator::Start(co);
  if (!coordinator.ok()) return std::fprintf(stderr, "%s\n", coordinator.status().ToString().c_str()), 1;
  const std::string endpoint = (*coordinator)->endpoint();

  std::atomic<bool> stop{false};
  std::atomic<int64_t> failed{0}, replies{0};
  std::vector<std::thread> streams;
  for (int s = 0; s < o.streams; ++s) {
    streams.emplace_back([&, s] {
      auto client = ServeClient::Connect(endpoint, std::chrono::milliseconds(120000));
      serve::GenerateRequest r;
      r.prompt = {static_cast<int32_t>(100 + s), 7, 7, 7, 7, 7, 7, 7};
      r.max_new_tokens = o.n;
      r.stop_at_eos = false;
      while (!stop.load()) {
        auto reply = (*client)->Generate(r);
        (reply.ok() ? replies : failed) += 1;
      }
    });
  }
  auto admin = ServeClient::Connect(endpoint, std::chrono::milliseconds(120000));
  std::this_thread::sleep_for(std::chrono::seconds(1));  // warm up

  // 1. No swaps.
  auto t0 = Clock::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(o.seconds));
  const std::vector<double> calm = log.StepMsSince(t0);

  // 2. Swap command -> first token of the new version; then a tag move -> first token.
  std::vector<double> to_first, load;
  int version = 1;
  for (int i = 0; i < o.swaps; ++i) {
    version = 3 - version;
    const std::string target = "m@" + std::to_string(version);
    const auto start = Clock::now();
    auto reply = (*admin)->Swap({0, target, false});
    if (!reply.ok()) return std::fprintf(stderr, "%s\n", reply.status().ToString().c_str()), 1;
    to_first.push_back(Ms(log.FirstOf(target, start) - start));
    load.push_back(reply->load_seconds * 1e3);
  }
  std::vector<double> tag_to_first;
  for (int i = 0; i < 3; ++i) {
    version = 3 - version;
    const std::string target = "m@" + std::to_string(version);
    const auto start = Clock::now();
    if (!(*reg)->Tag(target, "stable").ok()) return 1;
    tag_to_first.push_back(Ms(log.FirstOf(target, start) - start));
  }

  // 3. A swap storm: back-to-back swaps for the same time as the calm phase.
  t0 = Clock::now();
  int storm_swaps = 0;
  while (Clock::now() - t0 < std::chrono::duration<double>(o.seconds)) {
    version = 3 - version;
    if ((*admin)->Swap({0, "m@" + std::to_string(version), false}).ok()) ++storm_swaps;
  }
  const std::vector<double> storm = log.StepMsSince(t0);
  stop.store(true);
  for (auto& t : streams) t.join();

  std::printf("streams %d, %u new tokens per request, %d compute thread(s)\n", o.streams, o.n, o.threads);
  std::printf("swap command -> first token of the new version: median %.1f ms, max %.1f ms (load %.1f ms median)\n",
              Percentile(to_first, 0.5), Percentile(to_first, 1.0), Percentile(load, 0.5));
  std::printf("tag move -> first token of the new version: median %.1f ms, max %.1f ms (tag looked up every 200 ms)\n",
              Percentile(tag_to_first, 0.5), Percentile(tag_to_first, 1.0));
  std::printf("decode step latency, no swaps: p50 %.2f ms, p99 %.2f ms (%zu steps)\n", Percentile(calm, 0.5),
              Percentile(calm, 0.99), calm.size());
  std::printf("decode step latency, swap storm (%d swaps in %.0f s): p50 %.2f ms, p99 %.2f ms (%zu steps)\n", storm_swaps,
              o.seconds, Percentile(storm, 0.5), Percentile(storm, 0.99), storm.size());
  std::printf("requests: %lld answered, %lld failed\n", static_cast<long long>(replies.load()),
              static_cast<long long>(failed.load()));
  coordinator->reset();
  reg->reset();
  for (const char* suffix : {"", "-wal", "-shm"}) std::remove((path + suffix).c_str());
  return 0;
}

}  // namespace
}  // namespace brickrt::bench

int main(int argc, char** argv) { return brickrt::bench::Main(argc, argv); }
