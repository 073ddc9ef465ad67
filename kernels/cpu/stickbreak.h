// Stick-breaking attention (ModuleFormer, spec §2.5): for a query at absolute position p over keys
// 0..p (the diagonal included), with l_j = scale·<q, k_j> and β_j = σ(l_j):
//   a_j = β_j · Π_{m = j+1..p} (1 − β_m),   out = Σ_j a_j · v_j
// computed in log space, newest key first; the remainder 1 − Σ a_j is dropped. Keys and values are
// rows of one sequence's cache (K == V for MoLM, but they are separate pointers here).
#pragma once

#include <cstdint>

#include "core/thread_pool.h"

namespace brickrt::kernels {

// Log-remainder below which every older weight underflows F32 (exp(-104) ≈ 6.8e-46 is below half the
// smallest subnormal, and every β ≤ 1): stopping there is exact in F32 (spec G6).
inline constexpr float kStickBreakStopLog = -104.0f;

// Naive reference, in double, no early stop.
//   q F32 [n, d] (row stride ldq); positions int64 [n]: query r sees keys 0..positions[r];
//   k, v F32 [>= max(positions)+1, d] with row stride ldkv; out F32 [n, d] (row stride ldo).
void StickBreakRef(const float* q, int64_t ldq, int64_t n, const int64_t* positions, const float* k,
                   const float* v, int64_t ldkv, int64_t d, float scale, float* out, int64_t ldo);

// Decode: one query over keys 0..n_keys-1 (the newest is n_keys-1, the query's own position), with
// the exact early stop. q, out F32 [d].
void StickBreakDecode(const float* q, const float* k, const float* v, int64_t ldkv, int64_t n_keys, int64_t d,
                      float scale, float* out);

// Prefill: same contract as StickBreakRef, optimized (blocked logits, reverse cumulative sum,
// early stop) and split over `pool` (nullptr: calling thread only). Does not allocate: `workspace`
// must hold StickBreakWorkspaceFloats(max key count, pool threads) floats.
int64_t StickBreakWorkspaceFloats(int64_t max_keys, int n_threads);
void StickBreakPrefill(const float* q, int64_t ldq, int64_t n, const int64_t* positions, const float* k,
                       const float* v, int64_t ldkv, int64_t d, float scale, float* out, int64_t ldo,
                       float* workspace, ThreadPool* pool);

}  // namespace brickrt::kernels
