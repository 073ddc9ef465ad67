// Internal: the explicit portable and AVX-512 variants behind the public kernel entry points, so
// the dispatchers can choose at run time and the tests can check every variant against its reference.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "core/dtype.h"
#include "core/thread_pool.h"

namespace brickrt::kernels {
class PackedMatrix;
}

namespace brickrt::kernels::internal {

// True when the CPU has AVX-512 F/BW/VL/DQ + FMA + F16C (the ISA the *_avx512.cpp files are built for).
bool CpuHasAvx512();

// ---- thread split, shared by the row-major and the packed matmul dispatchers --------------------
// Rows up to this count take the streaming GEMV path: each weight is read once from memory and used
// for every row, which is what decode (memory-bound) needs.
inline constexpr int64_t kGemvMaxRows = 8;
// Below this many weight bytes a parallel loop costs more than it saves (wake-up ~1-2 µs).
inline constexpr int64_t kMinParallelBytes = 128 * 1024;

// ---- matmul: same contract as Matmul (kernels/cpu/matmul.h) -----------------------------------
void MatmulPortable(const float* x, int64_t M, int64_t K, const void* w, DType wt, int64_t N, float* y,
                    ThreadPool* pool);
// REQUIRES: CpuHasAvx512().
void MatmulAvx512(const float* x, int64_t M, int64_t K, const void* w, DType wt, int64_t N, float* y,
                  ThreadPool* pool);

// Range kernels the matmul dispatcher splits over threads. x F32 [M, K], w `wt` [K, N], y F32 [M, N].
// Gemv*: y[0:M, n0:n1] = x[0:M, kb:ke] · w[kb:ke, n0:n1] for M <= 8 (a partial sum when [kb, ke) is
// not all of K; y row stride N). Gemm*: rows [m0, m1), columns [n0, n1), all of K.
void GemvPortableRange(const float* x, int64_t M, int64_t K, const void* w, DType wt, int64_t N, float* y,
                       int64_t kb, int64_t ke, int64_t n0, int64_t n1);
void GemmPortableRange(const float* x, int64_t M, int64_t K, const void* w, DType wt, int64_t N, float* y,
                       int64_t m0, int64_t m1, int64_t n0, int64_t n1);
void GemvAvx512Range(const float* x, int64_t M, int64_t K, const void* w, DType wt, int64_t N, float* y,
                     int64_t kb, int64_t ke, int64_t n0, int64_t n1);
void GemmAvx512Range(const float* x, int64_t M, int64_t K, const void* w, DType wt, int64_t N, float* y,
                     int64_t m0, int64_t m1, int64_t n0, int64_t n1);

// ---- packed matmul: same contract as MatmulPacked (kernels/cpu/packed_matrix.h) -----------------
void MatmulPackedPortable(const float* x, int64_t M, const PackedMatrix& w, float* y, ThreadPool* pool);
// REQUIRES: CpuHasAvx512().
void MatmulPackedAvx512(const float* x, int64_t M, const PackedMatrix& w, float* y, ThreadPool* pool);

// Range kernels the packed dispatcher splits over threads: y[m0:m1, 64·p0 : min(N, 64·p1)] =
// x[m0:m1, 0:K] · W[0:K, same columns], W the panels [p0, p1) of `panels` (PackedMatrix::data(),
// `dt` [panels, K, 64]). x F32 row stride K, y F32 row stride N. Up to 8 rows are streamed (GEMV:
// the accumulators of up to 6 rows stay in registers over all of K); more rows are register-tiled
// with K blocking (GEMM).
void PackedRangePortable(const float* x, int64_t K, const void* panels, DType dt, int64_t N, float* y, int64_t m0,
                         int64_t m1, int64_t p0, int64_t p1);
void PackedRangeAvx512(const float* x, int64_t K, const void* panels, DType dt, int64_t N, float* y, int64_t m0,
                       int64_t m1, int64_t p0, int64_t p1);

// Element of a packed panel row that holds column j (0 <= j < 64): BF16 rows interleave each 32-column
// half as [c0, c16, c1, c17, ...] so that a 64-byte load widens to columns 0-15 (even elements, << 16)
// and 16-31 (odd elements, & 0xffff0000) in order; F32 and F16 rows are in column order.
inline int64_t PanelSlot(DType dt, int64_t j) {
  if (dt != DType::kBF16) return j;
  const int64_t half = j & ~int64_t{31}, i = j & 31;
  return half + (i < 16 ? 2 * i : 2 * (i - 16) + 1);
}

// ---- GELU, in place over n floats -------------------------------------------------------------
void GeluErfPortable(float* x, int64_t n);
void GeluTanhPortable(float* x, int64_t n);
void GeluErfAvx512(float* x, int64_t n);
void GeluTanhAvx512(float* x, int64_t n);

// ---- stick-breaking, one query over keys 0..n_keys-1 (newest = n_keys-1), exact early stop ------
// Keys per block of the scan: logits are computed this many at a time, newest first, so the early
// stop wastes at most one block of dot products.
inline constexpr int kStickBreakBlock = 32;
// q, out F32 [d]; k, v F32 [n_keys, d] with row stride ldkv; logits: scratch F32 [kStickBreakBlock].
void StickBreakQueryPortable(const float* q, const float* k, const float* v, int64_t ldkv, int64_t n_keys,
                             int64_t d, float scale, float* out, float* logits);
void StickBreakQueryAvx512(const float* q, const float* k, const float* v, int64_t ldkv, int64_t n_keys,
                           int64_t d, float scale, float* out, float* logits);
using StickBreakQueryFn = void (*)(const float*, const float*, const float*, int64_t, int64_t, int64_t, float,
                                   float*, float*);
// Prefill with an explicit query kernel (same contract as StickBreakPrefill).
void StickBreakPrefillWith(StickBreakQueryFn fn, const float* q, int64_t ldq, int64_t n, const int64_t* positions,
                           const float* k, const float* v, int64_t ldkv, int64_t d, float scale, float* out,
                           int64_t ldo, float* workspace, ThreadPool* pool);

// One step of the backward scan for a key with logit l, given the log-remainder r of the newer keys:
// its weight a = σ(l)·exp(r) and the next remainder r + log σ(−l), with the stable
// log σ(x) = min(x, 0) − log1p(exp(−|x|)) (both share the log1p term). Inline and shared by both
// variants so that they agree bit for bit.
struct StickBreakStep {
  float a;
  float r_next;
};
inline StickBreakStep StickBreakStepAt(float l, float r) {
  const float t = std::log1p(std::exp(-std::fabs(l)));
  return {std::exp(std::min(l, 0.0f) - t + r), r + (std::min(-l, 0.0f) - t)};
}

}  // namespace brickrt::kernels::internal
