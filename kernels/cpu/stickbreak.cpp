// Stick-breaking attention: the portable single-query scan (newest key first, F32 log-space
// remainder, exact early stop), the prefill split over queries, and the run-time dispatch.
#include <cstring>

#include "core/status.h"
#include "kernels/cpu/stickbreak.h"
#include "kernels/cpu/variants.h"

namespace brickrt::kernels {
namespace internal {

void StickBreakQueryPortable(const float* q, const float* k, const float* v, int64_t ldkv, int64_t n_keys, int64_t d,
                             float scale, float* out, float* logits) {
  std::memset(out, 0, static_cast<size_t>(d) * sizeof(float));
  float r = 0;  // log of the stick left by the newer keys (F32 is enough, G6)
  for (int64_t end = n_keys; end > 0; end -= kStickBreakBlock) {
    const int64_t begin = end > kStickBreakBlock ? end - kStickBreakBlock : 0;
    for (int64_t j = begin; j < end; ++j) {
      const float* kj = k + j * ldkv;
      float dot = 0;
      for (int64_t i = 0; i < d; ++i) dot += q[i] * kj[i];
      logits[j - begin] = scale * dot;
    }
    for (int64_t j = end - 1; j >= begin; --j) {
      const StickBreakStep s = StickBreakStepAt(logits[j - begin], r);
      if (s.a != 0.0f) {
        const float* vj = v + j * ldkv;
        for (int64_t i = 0; i < d; ++i) out[i] += s.a * vj[i];
      }
      r = s.r_next;
      if (r < kStickBreakStopLog) return;  // every older weight is exactly 0 in F32
    }
  }
}

void StickBreakPrefillWith(StickBreakQueryFn fn, const float* q, int64_t ldq, int64_t n, const int64_t* positions,
                           const float* k, const float* v, int64_t ldkv, int64_t d, float scale, float* out,
                           int64_t ldo, float* workspace, ThreadPool* pool) {
  // One task per query: costs differ (early stop, position), and the pool hands tasks out
  // dynamically, so uneven queries balance themselves. `thread` picks the logits scratch.
  auto run = [&](int64_t r, int thread) {
    fn(q + r * ldq, k, v, ldkv, positions[r] + 1, d, scale, out + r * ldo, workspace + thread * kStickBreakBlock);
  };
  if (pool == nullptr || pool->size() == 1 || n == 1) {
    for (int64_t r = 0; r < n; ++r) run(r, 0);
  } else {
    pool->ParallelFor(n, run);
  }
}

}  // namespace internal

int64_t StickBreakWorkspaceFloats(int64_t /*max_keys*/, int n_threads) {
  // Logits are computed one block of keys at a time, so the scratch does not grow with the context.
  return static_cast<int64_t>(n_threads < 1 ? 1 : n_threads) * internal::kStickBreakBlock;
}

void StickBreakDecode(const float* q, const float* k, const float* v, int64_t ldkv, int64_t n_keys, int64_t d,
                      float scale, float* out) {
  float logits[internal::kStickBreakBlock];
  if (internal::CpuHasAvx512()) {
    internal::StickBreakQueryAvx512(q, k, v, ldkv, n_keys, d, scale, out, logits);
  } else {
    internal::StickBreakQueryPortable(q, k, v, ldkv, n_keys, d, scale, out, logits);
  }
}

void StickBreakPrefill(const float* q, int64_t ldq, int64_t n, const int64_t* positions, const float* k,
                       const float* v, int64_t ldkv, int64_t d, float scale, float* out, int64_t ldo,
                       float* workspace, ThreadPool* pool) {
  BRICK_ASSERT(workspace != nullptr || n == 0, "StickBreakPrefill: workspace required");
  internal::StickBreakPrefillWith(
      internal::CpuHasAvx512() ? internal::StickBreakQueryAvx512 : internal::StickBreakQueryPortable, q, ldq, n,
      positions, k, v, ldkv, d, scale, out, ldo, workspace, pool);
}

}  // namespace brickrt::kernels
