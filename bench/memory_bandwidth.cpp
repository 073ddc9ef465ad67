// Read-bandwidth probe: AVX2 loads summed into a few accumulators so the loop is load-bound.
#include "bench/memory_bandwidth.h"

#include <immintrin.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>

#include "core/tensor.h"

namespace brickrt::bench {
namespace {

__attribute__((target("avx2"))) uint64_t SumAvx2(const uint8_t* p, size_t n) {
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i + 128 <= n; i += 128) {
    a0 = _mm256_add_epi64(a0, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i)));
    a1 = _mm256_add_epi64(a1, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 32)));
    a2 = _mm256_add_epi64(a2, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 64)));
    a3 = _mm256_add_epi64(a3, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 96)));
  }
  a0 = _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3));
  uint64_t out[4];
  std::memcpy(out, &a0, sizeof(out));
  return out[0] + out[1] + out[2] + out[3];
}

uint64_t SumScalar(const uint8_t* p, size_t n) {
  uint64_t s = 0;
  for (size_t i = 0; i + 8 <= n; i += 8) {
    uint64_t v;
    std::memcpy(&v, p + i, 8);
    s += v;
  }
  return s;
}

}  // namespace

double MeasureReadBandwidth(ThreadPool* pool, size_t bytes, int repeats) {
  auto buf = AllocateAligned(bytes, /*prefault=*/true);
  const bool avx2 = __builtin_cpu_supports("avx2");
  const int64_t tasks = pool ? pool->size() : 1;
  const size_t chunk = bytes / static_cast<size_t>(tasks) / 128 * 128;
  std::atomic<uint64_t> sink{0};
  double best = 0;
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    auto body = [&](int64_t task, int) {
      const uint8_t* p = buf.get() + static_cast<size_t>(task) * chunk;
      sink.fetch_add(avx2 ? SumAvx2(p, chunk) : SumScalar(p, chunk), std::memory_order_relaxed);
    };
    if (pool) pool->ParallelFor(tasks, body);
    else body(0, 0);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, static_cast<double>(chunk * static_cast<size_t>(tasks)) / s / 1e9);
  }
  return sink.load() == 1 ? best + 0 : best;  // keep the sums observable
}

}  // namespace brickrt::bench
