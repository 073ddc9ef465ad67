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
#include "kernels/cpu/packed_matrix.h"

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
  state.counters["GFLOP/s"] = benchmark::Counter(
      2.0 * static_cast<double>(M * K * N), benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
  state.SetLabel(std::string(DTypeName(wt)) + " threads=" + std::to_string(threads));
}

// Packed weights (PackedMatrix), cycled through >= kWeightBytesTotal of distinct matrices for M <= 8.
// Args: M, K, N, dtype (0 F32, 1 F16, 2 BF16), threads.
void BM_MatmulPacked(benchmark::State& state) {
  const int64_t M = state.range(0), K = state.range(1), N = state.range(2);
  const auto wt = static_cast<DType>(state.range(3));
  const int threads = static_cast<int>(state.range(4));
  const WeightSet src = MakeWeights(K, N, wt, 0);
  const size_t bytes = static_cast<size_t>(K * N) * DTypeSize(wt);
  const size_t count = M <= 8 ? std::max<size_t>(1, kWeightBytesTotal / bytes) : 1;
  std::vector<PackedMatrix> w;
  for (size_t c = 0; c < count; ++c) w.push_back(PackedMatrix::Pack(src.at(0), wt, K, N, false));
  std::vector<float> x(static_cast<size_t>(M * K), 0.5f), y(static_cast<size_t>(M * N));
  ThreadPool pool(threads);
  size_t i = 0;
  for (auto _ : state) {
    MatmulPacked(x.data(), M, w[i], y.data(), &pool);
    benchmark::ClobberMemory();
    if (++i == w.size()) i = 0;
  }
  const double weight_bytes = static_cast<double>(bytes);
  state.counters["GB/s"] =
      benchmark::Counter(weight_bytes, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
  state.counters["GFLOP/s"] = benchmark::Counter(
      2.0 * static_cast<double>(M * K * N), benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
  state.SetLabel(std::string(DTypeName(wt)) + " packed threads=" + std::to_string(threads));
}

// The ceiling for the GEMV: plain sequential reads of `bytes` per iteration (one contiguous range per
// thread, through the same pool), cycled over kWeightBytesTotal so they come from DRAM.
// Args: bytes per iteration, threads.
void BM_ReadBandwidth(benchmark::State& state) {
  const size_t bytes = static_cast<size_t>(state.range(0)) / 64 * 64;
  const int threads = static_cast<int>(state.range(1));
  const WeightSet set = MakeWeights(1, static_cast<int64_t>(bytes / 4), DType::kF32, kWeightBytesTotal);
  ThreadPool pool(threads);
  std::vector<uint64_t> sink(static_cast<size_t>(threads) * 8);
  size_t i = 0;
  for (auto _ : state) {
    const auto* base = reinterpret_cast<const uint64_t*>(set.at(i));
    const size_t words = bytes / 8;
    pool.ParallelFor(threads, [&](int64_t t, int) {
      const size_t b = words * static_cast<size_t>(t) / static_cast<size_t>(threads) / 8 * 8;
      const size_t e = words * static_cast<size_t>(t + 1) / static_cast<size_t>(threads) / 8 * 8;
      uint64_t acc[8] = {};
      for (size_t j = b; j < e; j += 8) {
        for (int l = 0; l < 8; ++l) acc[l] += base[j + static_cast<size_t>(l)];
      }
      for (int l = 0; l < 8; ++l) sink[static_cast<size_t>(t) * 8 + static_cast<size_t>(l)] += acc[l];
    });
    benchmark::DoNotOptimize(sink.data());
    benchmark::ClobberMemory();
    if (++i == set.count) i = 0;
  }
  state.counters["GB/s"] = benchmark::Counter(static_cast<double>(bytes), benchmark::Counter::kIsIterationInvariantRate,
                                              benchmark::Counter::kIs1000);
  state.SetLabel("threads=" + std::to_string(threads));
}

// Decode GEMV: the MoLM expert projections (D=1024 -> F=2048 and back).
BENCHMARK(BM_Matmul)
    ->ArgNames({"M", "K", "N", "dtype", "threads"})
    ->ArgsProduct({{1}, {1024}, {2048}, {0, 2}, {1, 2}})
    ->ArgsProduct({{1}, {2048}, {1024}, {0, 2}, {1, 2}})
    ->UseRealTime();

// Decode GEMV over packed BF16 weights: the expert projections and lm_head (K = 1024, N = 50295).
BENCHMARK(BM_MatmulPacked)
    ->ArgNames({"M", "K", "N", "dtype", "threads"})
    ->ArgsProduct({{1}, {1024}, {2048}, {2}, {1, 2}})
    ->ArgsProduct({{1}, {2048}, {1024}, {2}, {1, 2}})
    ->ArgsProduct({{1}, {1024}, {50295}, {2}, {1, 2}})
    ->UseRealTime();
BENCHMARK(BM_Matmul)
    ->ArgNames({"M", "K", "N", "dtype", "threads"})
    ->ArgsProduct({{1}, {1024}, {50295}, {2}, {1, 2}})
    ->UseRealTime();

// Plain read of 4 MiB (one BF16 expert projection) and 100 MiB (lm_head) per iteration.
BENCHMARK(BM_ReadBandwidth)->ArgNames({"bytes", "threads"})->ArgsProduct({{4 << 20, 100 << 20}, {1, 2}})->UseRealTime();

// Prefill GEMM over packed weights.
BENCHMARK(BM_MatmulPacked)
    ->ArgNames({"M", "K", "N", "dtype", "threads"})
    ->ArgsProduct({{64, 512}, {1024}, {2048}, {0, 2}, {1, 2}})
    ->UseRealTime();

// Prefill GEMM: rows routed to one expert.
BENCHMARK(BM_Matmul)
    ->ArgNames({"M", "K", "N", "dtype", "threads"})
    ->ArgsProduct({{64, 512}, {1024}, {2048}, {0, 2}, {1, 2}})
    ->UseRealTime();

}  // namespace
}  // namespace brickrt::kernels

BENCHMARK_MAIN();
