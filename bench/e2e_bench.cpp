// End-to-end prefill/decode benchmark on a MoLM-shaped random model, with the decode roofline:
// (bytes of weights + KV cache one token reads) / (measured read bandwidth) vs the measured step time.
// Usage: brick_bench_e2e [--layers 4] [--threads 0] [--prompt 128] [--decode 64] [--batch 1,8] [--dtype bf16]
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "bench/memory_bandwidth.h"
#include "bench/molm_shape.h"
#include "bricks/sampler.h"
#include "bricks/session.h"
#include "registry/test_model.h"

namespace brickrt::bench {
namespace {

struct Options {
  int layers = 4;
  int threads = 0;
  int64_t prompt = 128;
  int64_t decode = 64;
  std::vector<int> batches = {1, 8};
  DType dtype = DType::kBF16;
};

double PeakRssMiB() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

Options Parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "brick_bench_e2e: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--layers") o.layers = std::atoi(next().c_str());
    else if (a == "--threads") o.threads = std::atoi(next().c_str());
    else if (a == "--prompt") o.prompt = std::atoll(next().c_str());
    else if (a == "--decode") o.decode = std::atoll(next().c_str());
    else if (a == "--dtype") o.dtype = ParseDType(next()).value_or(DType::kBF16);
    else if (a == "--batch") {
      o.batches.clear();
      std::string s = next();
      for (size_t p = 0; p <= s.size();) {
        size_t e = s.find(',', p);
        if (e == std::string::npos) e = s.size();
        o.batches.push_back(std::atoi(s.substr(p, e - p).c_str()));
        p = e + 1;
      }
    } else {
      std::fprintf(stderr, "usage: brick_bench_e2e [--layers N] [--threads N] [--prompt T] [--decode N] [--batch 1,8] [--dtype bf16|f16|f32]\n");
      std::exit(a == "--help" ? 0 : 2);
    }
  }
  return o;
}

int Main(int argc, char** argv) {
  const Options o = Parse(argc, argv);
  const int threads = o.threads > 0 ? o.threads : static_cast<int>(std::thread::hardware_concurrency());
  const TestModelOptions mo = MolmShaped(o.layers, o.dtype);
  std::fprintf(stderr, "building a MoLM-shaped model (%d layers, %s)...\n", o.layers, DTypeName(o.dtype));
  std::shared_ptr<const Model> model;
  {
    auto made = MakeRandomModel(mo);
    if (!made.ok()) {
      std::fprintf(stderr, "%s\n", made.status().ToString().c_str());
      return 1;
    }
    auto built = Model::Build(made->first, std::move(made->second));
    if (!built.ok()) {
      std::fprintf(stderr, "%s\n", built.status().ToString().c_str());
      return 1;
    }
    model = *built;
  }  // the generator's copies of transposed tensors are freed here
  const ModelConfig& cfg = model->config();

  ThreadPool pool(threads);
  const double bw = MeasureReadBandwidth(&pool);
  std::printf("machine: %u hardware threads; benchmark threads: %d; measured read bandwidth %.1f GB/s\n",
              std::thread::hardware_concurrency(), threads, bw);
  std::printf("model: %d layers, d_model 1024, ffd 2048, 16 attn / 32 mlp experts, top-2, vocab 50295, %s; "
              "weights %.1f MiB, active per token %.1f MiB\n",
              o.layers, DTypeName(o.dtype), static_cast<double>(model->TotalWeightBytes()) / (1 << 20),
              static_cast<double>(model->ActiveWeightBytesPerToken()) / (1 << 20));

  for (int batch : o.batches) {
    SessionOptions so;
    so.max_sequences = batch;
    so.max_context = o.prompt + o.decode + 1;
    so.max_step_tokens = batch * o.prompt;
    auto created = Session::Create(model, so, &pool);
    if (!created.ok()) {
      std::fprintf(stderr, "%s\n", created.status().ToString().c_str());
      return 1;
    }
    Session& session = **created;
    std::vector<std::vector<int32_t>> prompts(static_cast<size_t>(batch));
    Rng rng(42);
    std::vector<SequenceChunk> chunks;
    for (int b = 0; b < batch; ++b) {
      for (int64_t t = 0; t < o.prompt; ++t) prompts[b].push_back(static_cast<int32_t>(rng.Next() % 50295));
      chunks.push_back({*session.AddSequence(), prompts[b]});
    }
    std::vector<float> logits(static_cast<size_t>(batch) * 50295);
    auto t0 = std::chrono::steady_clock::now();
    if (Status st = session.Forward(chunks, false, logits.data()); !st.ok()) {
      std::fprintf(stderr, "%s\n", st.ToString().c_str());
      return 1;
    }
    const double prefill_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

    Sampler greedy(SamplingParams{0.0f, 0, 1.0f, 0}, 50295);
    std::vector<int32_t> next(static_cast<size_t>(batch));
    std::vector<double> step_s;
    for (int64_t s = 0; s < o.decode; ++s) {
      for (int b = 0; b < batch; ++b) {
        next[b] = greedy.Sample(&logits[static_cast<size_t>(b) * 50295]);
        chunks[b].tokens = {&next[b], 1};
      }
      t0 = std::chrono::steady_clock::now();
      if (Status st = session.Forward(chunks, false, logits.data()); !st.ok()) {
        std::fprintf(stderr, "%s\n", st.ToString().c_str());
        return 1;
      }
      step_s.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    const double step = Median(step_s);
    std::printf("batch %d: prefill %lld tokens in %.3f s = %.1f tok/s | decode median step %.2f ms = %.1f tok/s",
                batch, static_cast<long long>(batch * o.prompt), prefill_s,
                static_cast<double>(batch * o.prompt) / prefill_s, step * 1e3, batch / step);
    if (batch == 1) {
      // Unique bytes one decode token reads: active weights + this token's cache (K = V, F32,
      // one [S, D] slab per layer at the median context length).
      const double ctx = static_cast<double>(o.prompt) + static_cast<double>(o.decode) / 2;
      const double cache = static_cast<double>(cfg.n_layer) * ctx * static_cast<double>(cfg.n_embd) * 4;
      const double bytes = static_cast<double>(model->ActiveWeightBytesPerToken()) + cache;
      const double limit_s = bytes / (bw * 1e9);
      std::printf(" | roofline %.2f ms (%.1f MiB/token) -> %.0f%% of the limit", limit_s * 1e3, bytes / (1 << 20),
                  100.0 * limit_s / step);
    }
    std::printf(" | peak RSS %.0f MiB\n", PeakRssMiB());
  }
  return 0;
}

}  // namespace
}  // namespace brickrt::bench

int main(int argc, char** argv) { return brickrt::bench::Main(argc, argv); }
