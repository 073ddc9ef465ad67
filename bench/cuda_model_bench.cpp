// The whole model on one GPU (CudaModel + CudaSession), end to end: prefill and decode tokens/s of a
// MoLM-shaped random BF16 model at batch 1, 8 and 64, and batch-1 decode as a fraction of the HBM
// roofline: (active weight bytes + this token's KV cache) ÷ (measured device copy bandwidth) against
// the measured step time, logits copied back to the host included. Exits 0 with a message on a machine
// without a CUDA device.
// Usage: brick_bench_cuda_model [--layers 24] [--prompt 128] [--decode 32]   (MoLM-350M-4B: 24 layers)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "bench/bench_util.h"
#include "bench/molm_shape.h"
#include "bricks/cuda/cuda_session.h"
#include "bricks/sampler.h"
#include "kernels/cuda/device.h"
#include "kernels/cuda/memory.h"
#include "registry/test_model.h"

namespace brickrt::bench {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

int Fail(const Status& st) {
  std::fprintf(stderr, "brick_bench_cuda_model: %s\n", st.ToString().c_str());
  return 1;
}

// GB/s of device-to-device copies of a 1 GiB buffer (bytes read + bytes written, best of 5): the HBM
// bandwidth a memory-bound decode can reach.
Result<double> DeviceCopyBandwidth() {
  constexpr size_t kBytes = size_t{1} << 30;
  BRICK_ASSIGN_OR_RETURN(cuda::DeviceMemory a, cuda::DeviceMemory::Allocate(kBytes));
  BRICK_ASSIGN_OR_RETURN(cuda::DeviceMemory b, cuda::DeviceMemory::Allocate(kBytes));
  BRICK_ASSIGN_OR_RETURN(cuda::Stream stream, cuda::Stream::Create());
  BRICK_RETURN_IF_ERROR(cuda::ZeroDevice(a.data(), kBytes, stream.get()));
  double best = 1e30;
  for (int i = 0; i < 6; ++i) {
    BRICK_RETURN_IF_ERROR(stream.Synchronize());
    const auto t0 = Clock::now();
    BRICK_RETURN_IF_ERROR(cuda::CopyOnDevice(b.data(), a.data(), kBytes, stream.get()));
    BRICK_RETURN_IF_ERROR(stream.Synchronize());
    if (i > 0) best = std::min(best, Seconds(t0));  // the first copy warms up
  }
  return 2.0 * static_cast<double>(kBytes) / best / 1e9;
}

int Main(int argc, char** argv) {
  const auto devices = cuda::ListDevices();
  if (devices.empty()) {
    std::printf("brick_bench_cuda_model: no CUDA device on this machine, nothing measured\n");
    return 0;
  }
  int layers = 24;
  int64_t prompt = 128, decode = 32;
  ParseFlags(argc, argv, {{"--layers", &layers}, {"--prompt", &prompt}, {"--decode", &decode}});
  const TestModelOptions mo = MolmShaped(layers, DType::kBF16);
  std::fprintf(stderr, "building a MoLM-shaped BF16 model (%d layers)...\n", layers);
  std::shared_ptr<const CudaModel> gpu;
  {
    auto made = MakeRandomModel(mo);
    if (!made.ok()) return Fail(made.status());
    auto built = Model::Build(made->first, std::move(made->second));
    if (!built.ok()) return Fail(built.status());
    const auto t0 = Clock::now();
    auto up = CudaModel::Upload(*built, 0);
    if (!up.ok()) return Fail(up.status());
    gpu = *up;
    std::printf("upload: %.1f MiB of weights in %.2f s\n", static_cast<double>(gpu->device_bytes()) / (1 << 20),
                Seconds(t0));
  }
  const Model& model = gpu->cpu();
  const ModelConfig& cfg = model.config();
  auto bw = DeviceCopyBandwidth();
  if (!bw.ok()) return Fail(bw.status());
  std::printf("device: %s (cc %d.%d), copy bandwidth %.0f GB/s; model: %d layers, BF16, active per token %.1f MiB\n",
              devices[0].name.c_str(), devices[0].cc_major, devices[0].cc_minor, *bw, layers,
              static_cast<double>(model.ActiveWeightBytesPerToken()) / (1 << 20));

  const int64_t V = cfg.vocab_size;
  // Both expert paths where they differ (CudaSession::Create's gemv_max_pairs): blocks of up to 64
  // pairs through the grouped GEMV (no host sync per block), or every block through cuBLAS GEMMs sized
  // on the host. Prefill (and batch 64 decode, 128 pairs) take cuBLAS either way.
  for (const int64_t gemv_max_pairs : {CudaSession::kGemvMaxPairs, int64_t{0}}) {
    std::printf("expert path for small blocks: %s\n", gemv_max_pairs > 0 ? "grouped GEMV (default)" : "cuBLAS");
    for (int batch : {1, 8, 64}) {
      SessionOptions so;
      so.max_sequences = batch;
      so.max_context = prompt + decode + 1;
      so.max_step_tokens = batch * prompt;
      auto created = CudaSession::Create(gpu, so, gemv_max_pairs);
      if (!created.ok()) return Fail(created.status());
      CudaSession& session = **created;
      std::vector<std::vector<int32_t>> prompts(static_cast<size_t>(batch));
      Rng rng(42);
      std::vector<SequenceChunk> chunks;
      for (int b = 0; b < batch; ++b) {
        for (int64_t t = 0; t < prompt; ++t) prompts[b].push_back(static_cast<int32_t>(rng.Next() % V));
        auto seq = session.AddSequence();
        if (!seq.ok()) return Fail(seq.status());
        chunks.push_back({*seq, prompts[b]});
      }
      std::vector<float> logits(static_cast<size_t>(batch * V));
      auto t0 = Clock::now();
      if (Status st = session.Forward(chunks, false, logits.data()); !st.ok()) return Fail(st);
      const double prefill_s = Seconds(t0);
      Sampler greedy(SamplingParams{0.0f, 0, 1.0f, 0}, V);
      std::vector<int32_t> next(static_cast<size_t>(batch));
      std::vector<double> step_s;
      for (int64_t s = 0; s < decode; ++s) {
        for (int b = 0; b < batch; ++b) {
          next[b] = greedy.Sample(&logits[static_cast<size_t>(b * V)]);
          chunks[b].tokens = {&next[b], 1};
        }
        t0 = Clock::now();
        if (Status st = session.Forward(chunks, false, logits.data()); !st.ok()) return Fail(st);
        step_s.push_back(Seconds(t0));
      }
      const double step = Percentile(step_s, 0.5);
      std::printf("batch %2d: prefill %lld tokens in %.3f s = %.0f tok/s | decode median step %.2f ms = %.1f tok/s",
                  batch, static_cast<long long>(batch * prompt), prefill_s,
                  static_cast<double>(batch * prompt) / prefill_s, step * 1e3, batch / step);
      if (batch == 1) {
        // Unique bytes one decode token reads: active weights + its cache (F32 [S, D] per layer at the
        // median context length).
        const double ctx = static_cast<double>(prompt) + static_cast<double>(decode) / 2;
        const double bytes = static_cast<double>(model.ActiveWeightBytesPerToken()) +
                             static_cast<double>(cfg.n_layer) * ctx * static_cast<double>(cfg.n_embd) * 4;
        const double limit_s = bytes / (*bw * 1e9);
        std::printf(" | roofline %.3f ms (%.1f MiB/token) -> %.1f%% of the limit", limit_s * 1e3, bytes / (1 << 20),
                    100.0 * limit_s / step);
      }
      std::printf("\n");
    }
  }
  return 0;
}

}  // namespace
}  // namespace brickrt::bench

int main(int argc, char** argv) { return brickrt::bench::Main(argc, argv); }
