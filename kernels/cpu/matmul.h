// Matrix products of F32 activations by F32/F16/BF16 weights with F32 accumulation.
// Weights are row-major [K, N] ("in, out"): y = x · W. This is the runtime layout of every weight
// (expert tensors are stored that way; router and lm_head tensors are transposed at load).
#pragma once

#include <cstdint>

#include "core/dtype.h"
#include "core/thread_pool.h"

namespace brickrt::kernels {

// Naive reference: y[m, n] = Σ_k x[m, k] · w[k, n], accumulated in double, stored as F32.
//   x F32 [M, K], w `wt` [K, N], y F32 [M, N]; all contiguous row-major.
void MatmulRef(const float* x, int64_t M, int64_t K, const void* w, DType wt, int64_t N, float* y);

// Optimized: a streaming GEMV path for small M (decode) and a blocked, register-tiled GEMM for large
// M (prefill), AVX-512 when the CPU has it, split over `pool` (nullptr: calling thread only).
// Overwrites y. Does not allocate. Same shapes as MatmulRef.
void Matmul(const float* x, int64_t M, int64_t K, const void* w, DType wt, int64_t N, float* y, ThreadPool* pool);

}  // namespace brickrt::kernels
