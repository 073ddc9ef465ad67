// The cost of running MLP experts on a brick node (issue #5), on this machine over tcp loopback:
//   1. a bare ZeroMQ DEALER/ROUTER round trip of a decode-sized payload (rows × D floats each way);
//   2. the same payload as one remote expert call (RemoteExecutor -> BrickServer) with an expert whose
//      compute is measured separately, so call − compute − bare round trip = the protocol's overhead;
//   3. decode tokens/s of a MoLM-shaped model all-local vs with every MLP expert on the node.
// Usage: brick_bench_split [--layers 4] [--rows 1] [--iters 2000] [--decode 64] [--threads 1]
// Numbers go to docs/benchmarks.md; nothing here passes or fails.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "bench/bench_util.h"
#include "bricks/session.h"
#include "node/brick_info.h"
#include "node/brick_server.h"
#include "node/remote_executor.h"
#include "node/submodel.h"
#include "registry/test_model.h"

namespace brickrt::bench {
namespace {

using Clock = std::chrono::steady_clock;

double Us(Clock::duration d) { return std::chrono::duration<double, std::micro>(d).count(); }

struct Options {
  int layers = 4;
  int64_t rows = 1;
  int iters = 2000;
  int64_t decode = 64;
  int threads = 1;
};

Options Parse(int argc, char** argv) {
  Options o;
  ParseFlags(argc, argv,
             {{"--layers", &o.layers}, {"--rows", &o.rows}, {"--iters", &o.iters}, {"--decode", &o.decode},
              {"--threads", &o.threads}});
  return o;
}

// Bare ZeroMQ: a ROUTER echoing every message on a thread, a DEALER sending `bytes` and waiting.
std::vector<double> BareRoundTrips(size_t bytes, int iters) {
  zmq::context_t ctx;
  zmq::socket_t router(ctx, zmq::socket_type::router);
  router.set(zmq::sockopt::linger, 0);
  router.bind("tcp://127.0.0.1:*");
  const std::string endpoint = router.get(zmq::sockopt::last_endpoint);
  std::thread echo([&] {
    for (int i = 0; i < iters + 10; ++i) {
      zmq::message_t id, payload;
      if (!router.recv(id) || !router.recv(payload)) return;
      router.send(id, zmq::send_flags::sndmore);
      router.send(payload, zmq::send_flags::none);
    }
  });
  zmq::socket_t dealer(ctx, zmq::socket_type::dealer);
  dealer.set(zmq::sockopt::linger, 0);
  dealer.connect(endpoint);
  std::vector<char> buf(bytes, 1);
  std::vector<double> us;
  for (int i = 0; i < iters + 10; ++i) {
    const auto t0 = Clock::now();
    dealer.send(zmq::buffer(buf), zmq::send_flags::none);
    zmq::message_t reply;
    if (!dealer.recv(reply)) break;
    if (i >= 10) us.push_back(Us(Clock::now() - t0));
  }
  echo.join();
  return us;
}

int Main(int argc, char** argv) {
  const Options o = Parse(argc, argv);
  const std::string path = "/tmp/brick_split_bench_" + std::to_string(getpid()) + ".db";
  TestModelOptions mo;  // MoLM-shaped (D 1024, F 2048, 16 attention / 32 MLP experts, top-2)
  mo.layers = o.layers;
  mo.d_model = 1024;
  mo.ffd_hidden = 2048;
  mo.gating_size = 256;
  mo.vocab = 50295;
  mo.attn_experts = 16;
  mo.mlp_experts = 32;
  auto made = MakeRandomModel(mo);
  auto reg = Registry::Open(path);
  if (!made.ok() || !reg.ok()) return std::fprintf(stderr, "setup failed\n"), 1;
  auto imported = (*reg)->Import("m", made->first, made->second, Visibility::kShared, "bench");
  auto loaded = LoadManifestModel(**reg, imported->manifest);
  auto records = (*reg)->ManifestBricks(imported->manifest);
  if (!imported.ok() || !loaded.ok() || !records.ok()) return std::fprintf(stderr, "import failed\n"), 1;
  const std::shared_ptr<const Model> model = loaded->model;

  BrickServerOptions so;
  so.registry_path = path;
  so.listen = "tcp://127.0.0.1:*";
  so.serve = {"m/L*.mlp.E*"};
  so.threads = o.threads;
  auto server = BrickServer::Start(so);
  if (!server.ok()) return std::fprintf(stderr, "%s\n", server.status().ToString().c_str()), 1;
  RemoteExecutorOptions eo;
  eo.endpoint = (*server)->endpoint();
  eo.timeout_ms = 5000;
  for (const BrickRecord& r : *records) {
    if (r.kind == BrickKind::kMlpExpert) eo.bricks.push_back(MlpBrickInfo(r));
  }
  auto ex = RemoteExecutor::Create(eo);
  if (!ex.ok() || !(*ex)->Connect().ok()) return std::fprintf(stderr, "connect failed\n"), 1;

  // 1 + 2: one expert, `rows` rows, as a remote call vs bare round trip vs local compute.
  const int64_t D = mo.d_model, R = o.rows;
  std::vector<float> rows(static_cast<size_t>(R * D), 0.01f), out(rows.size()), mid(static_cast<size_t>(R * 2048));
  const int64_t expert = 0;
  const int32_t count = static_cast<int32_t>(R);
  ExpertCall call{0, D, {&expert, 1}, {&count, 1}, rows.data(), out.data()};
  std::vector<double> remote, compute;
  for (int i = 0; i < o.iters + 10; ++i) {
    const auto t0 = Clock::now();
    if (!(*ex)->Start(call).ok() || !(*ex)->Finish().ok()) return std::fprintf(stderr, "call failed\n"), 1;
    if (i >= 10) remote.push_back(Us(Clock::now() - t0));
    const auto t1 = Clock::now();
    model->layers()[0].mlp[0]->Forward(rows.data(), R, out.data(), mid.data(), nullptr, nullptr);
    if (i >= 10) compute.push_back(Us(Clock::now() - t1));
  }
  const std::vector<double> bare = BareRoundTrips(static_cast<size_t>(R * D * 4), o.iters);
  std::printf("one MLP expert (D %lld, F 2048, BF16), %lld row(s), %d calls, tcp 127.0.0.1:\n", static_cast<long long>(D),
              static_cast<long long>(R), o.iters);
  std::printf("  bare ZeroMQ round trip of %lld bytes each way: median %.1f us, p99 %.1f us\n",
              static_cast<long long>(R * D * 4), Percentile(bare, 0.5), Percentile(bare, 0.99));
  std::printf("  expert compute in process:                    median %.1f us\n", Percentile(compute, 0.5));
  std::printf("  remote expert call (RemoteExecutor):          median %.1f us, p99 %.1f us\n", Percentile(remote, 0.5),
              Percentile(remote, 0.99));
  std::printf("  overhead beyond round trip + compute:         median %.1f us\n",
              Percentile(remote, 0.5) - Percentile(bare, 0.5) - Percentile(compute, 0.5));

  // 3: decode tokens/s, all local vs every MLP expert on the node.
  MlpPlacement all_remote;
  all_remote.executors = {ex->get()};
  for (const Layer& l : model->layers()) all_remote.owner.emplace_back(l.mlp.size(), 0);
  const MlpPlacement* const placements[] = {nullptr, &all_remote};
  for (const MlpPlacement* p : placements) {
    ThreadPool pool(o.threads);
    SessionOptions sopt{1, 16 + o.decode, 16};
    sopt.mlp_placement = p;
    auto session = Session::Create(model, sopt, &pool);
    if (!session.ok()) return 1;
    const int seq = *(*session)->AddSequence();
    std::vector<int32_t> prompt(16, 7);
    std::vector<float> logits(static_cast<size_t>(mo.vocab));
    const SequenceChunk c{seq, prompt};
    if (!(*session)->Forward({&c, 1}, false, logits.data()).ok()) return 1;
    int32_t next = 11;
    const SequenceChunk step{seq, {&next, 1}};
    const auto t0 = Clock::now();
    for (int64_t t = 0; t < o.decode; ++t) {
      if (!(*session)->Forward({&step, 1}, false, logits.data()).ok()) return std::fprintf(stderr, "decode failed\n"), 1;
    }
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    std::printf("decode, %d layers, batch 1, %d thread(s), %s: %.1f tok/s (%.2f ms/token)\n", o.layers, o.threads,
                p == nullptr ? "all local" : "all MLP experts on the node", static_cast<double>(o.decode) / s,
                s * 1e3 / static_cast<double>(o.decode));
  }
  server->reset();
  for (const char* suffix : {"", "-wal", "-shm"}) std::remove((path + suffix).c_str());
  return 0;
}

}  // namespace
}  // namespace brickrt::bench

int main(int argc, char** argv) { return brickrt::bench::Main(argc, argv); }
