// Google Benchmark of the CPU matmul: decode GEMV bandwidth (GB/s of weights streamed, the number
// that bounds decode speed) and prefill GEMM throughput (GFLOP/s). Results go to docs/benchmarks.md.
#include <benchmark/benchmark.h>
#include <sys/mman.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/thread_pool.h"
#include "kernels/cpu/matmul.h"

namespace brickrt::kernels {
namespace {

// Weight sets larger than the 32 MiB L3 are cycled through so the GEMV reads come from DRAM, as in
// real decode (a whole model never fits in cache).
constexpr size_t kWeightBytesTotal = size_t{256} << 20;
constexpr size_t kHuge = size_t{2} << 20;

// One 2 MiB-aligned block with MADV_HUGEPAGE, as the runtime is meant to hold weights (DESIGN.md §5).
// (On the 2-core VM no difference from 4 KiB pages was measurable through its run-to-run noise.)
struct WeightSet {
  struct Free {
    void operator()(uint8_t* p) const { std::free(p); }
  };
  std::unique_ptr<uint8_t, Free> block;
  size_t bytes_each = 0;
  size_t count = 0;
  const uint8_t* at(size_t i) const { return block.get() + i * bytes_each; }
};

WeightSet MakeWeights(int64_t K, int64_t N, DType wt, size_t total_bytes) {
  const size_t bytes = static_cast<size_t>(K * N) * DTypeSize(wt);
  const size_t count = std::max<size_t>(1, total_bytes / bytes);
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> f(static_cast<size_t>(K * N));
  for (float& v : f) v = dist(rng);
  WeightSet set;
  set.bytes_each = (bytes + 4095) / 4096 * 4096;
  set.count = count;
  const size_t total = (set.bytes_each * count + kHuge - 1) / kHuge * kHuge;
  set.block.reset(static_cast<uint8_t*>(std::aligned_alloc(kHuge, total)));
  madvise(set.block.get(), total, MADV_HUGEPAGE);
  // Written here, so every page is touched before timing.
  for (size_t i = 0; i < count; ++i) ConvertFromF32(f.data(), f.size(), wt, set.block.get() + i * set.bytes_each);
  return set;
}

// Args: M, K, N, dtype (0 F32, 1 F16, 2 BF16), threads.
void BM_Matmul(benchmark::State& state) {
  const int64_t M = state.range(0), K = state.range(1), N = state.range(2);
  const auto wt = static_cast<DType>(state.range(3));
  const int threads = static_cast<int>(state.range(4));
  // GEMM reuses each weight many times, so one (cache-resident) matrix is representative there.
  const WeightSet w = MakeWeights(K, N, wt, M <= 8 ? kWeightBytesTotal : 0);
  std::vector<float> x(static_cast<size_t>(M * K), 0.5f), y(static_cast<size_t>(M * N));
  ThreadPool pool(threads);
  size_t i = 0;
  for (auto _ : state) {
    Matmul(x.data(), M, K, w.at(i), wt, N, y.data(), &pool);
    benchmark::ClobberMemory();
    if (++i == w.count) i = 0;
  }
  const double weight_bytes = static_cast<double>(K * N) * static_cast<double>(DTypeSize(wt));
  state.counters["GB/s"] =
      benchmark::Counter(weight_bytes, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * static_cast<double>(M * K * N),
                                                 benchmark::Counter::kIsIterationInvariantRate,
                                                 benchmark::Counter::kIs1000);
  state.SetLabel(std::string(DTypeName(wt)) + " threads=" + std::to_string(threads));
}

// Decode GEMV: the MoLM expert projections (D=1024 -> F=2048 and back).
BENCHMARK(BM_Matmul)
    ->ArgNames({"M", "K", "N", "dtype", "threads"})
    ->ArgsProduct({{1}, {1024}, {2048}, {0, 2}, {1, 2}})
    ->ArgsProduct({{1}, {2048}, {1024}, {0, 2}, {1, 2}})
    ->UseRealTime();

// Prefill GEMM: rows routed to one expert.
BENCHMARK(BM_Matmul)
    ->ArgNames({"M", "K", "N", "dtype", "threads"})
    ->ArgsProduct({{64, 512}, {1024}, {2048}, {0, 2}, {1, 2}})
    ->UseRealTime();

}  // namespace
}  // namespace brickrt::kernels

BENCHMARK_MAIN();
