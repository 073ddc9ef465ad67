// Stick-breaking attention on the GPU (spec §2.5; same contracts as kernels/cpu/stickbreak.h): for a
// query at position p over keys 0..p (diagonal included), l_j = scale·<q, k_j>, β_j = σ(l_j),
//   a_j = β_j · Π_{m=j+1..p} (1 − β_m),   out = Σ_j a_j · v_j
// in log space, newest key first, stopping exactly where the CPU does (log-remainder below
// kStickBreakStopLog = −104: every older weight is 0 in F32). The remainder is dropped.
#pragma once

#include <cstdint>

#include "core/status.h"
#include "kernels/cuda/memory.h"

namespace brickrt::cuda {

// Decode: one query over keys 0..n_keys-1 of one sequence's cache. q, out F32 [d]; k, v F32
// [n_keys, d] with row stride ldkv; all device. One block; enqueued on `stream`; allocates nothing.
Status StickBreakDecodeCuda(const float* q, const float* k, const float* v, int64_t ldkv, int64_t n_keys, int64_t d,
                            float scale, float* out, CudaStream stream);

// Prefill (causal, one sequence): query r sees keys 0..positions[r]. q F32 [n, d] (row stride ldq),
// positions int64 [n], k, v F32 [>= max(positions)+1, d] (row stride ldkv), out F32 [n, d] (row stride
// ldo); all device. One block per query, each running the decode scan. Allocates nothing.
Status StickBreakPrefillCuda(const float* q, int64_t ldq, int64_t n, const int64_t* positions, const float* k,
                             const float* v, int64_t ldkv, int64_t d, float scale, float* out, int64_t ldo,
                             CudaStream stream);

// Attention for P gathered (token, expert) pairs of a batch of sequences, in one launch: query p (row p
// of q, stride ldq) belongs to token row rows[p] at absolute position positions[rows[p]], and attends
// over keys 0..positions[rows[p]] of that row's sequence cache kv_of_row[rows[p]] (K = V, F32 rows of
// stride ldkv: MoLM's shared LN₁ memory). q F32 [P, d], rows int32 [P], positions int64 [rows],
// kv_of_row: [rows] device pointers, out F32 [P, d] (stride ldo); all device. One block per pair, each
// running the decode scan; results equal StickBreakPrefillCuda's for the same query, keys and position.
Status StickBreakPairsCuda(const float* q, int64_t ldq, int64_t P, const int32_t* rows, const int64_t* positions,
                           const float* const* kv_of_row, int64_t ldkv, int64_t d, float scale, float* out,
                           int64_t ldo, CudaStream stream);

}  // namespace brickrt::cuda
