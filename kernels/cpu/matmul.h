// Matrix products of F32 activations by row-major [K, N] ("in, out") F32/F16/BF16 weights, y = x · W,
// accumulated in F32. Not the runtime path: bricks pack their weights into column panels at load and
// call MatmulPacked (kernels/cpu/packed_matrix.h). Matmul is kept as the row-major baseline of
// bench/kernels, and MatmulRef, in this plain layout, is the oracle for both kernels' tests.
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
