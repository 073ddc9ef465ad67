// Mixture-of-experts dispatch on the GPU (spec §2.7): group the (token, slot) pairs by expert, gather
// the rows, one GEMM per expert on its contiguous slice, then h[row] += gate·y. Same grouping as
// bricks' ExpertGroups::Build (counting sort, rows ascending within an expert) and the same combine
// order as its ScatterAddGated (per row, experts in ascending order).
#pragma once

#include <cstdint>

#include "core/dtype.h"
#include "core/status.h"
#include "kernels/cuda/matmul.h"
#include "kernels/cuda/memory.h"

namespace brickrt::cuda {

// ids int32 [M, k], gates F32 [M, k] -> offsets int32 [E + 1] (pairs of expert e are
// [offsets[e], offsets[e+1])), rows int32 [M·k] (token row of each pair), pair_gates F32 [M·k],
// pair_of int32 [M·k] (the pair index of (row, slot), for the combine); all device. One block, stable:
// pairs of one expert keep row order. REQUIRES: ids in [0, E) (a pair outside gets pair_of = −1 and is
// left out). Enqueued on `stream`; the caller copies `offsets` to the host to size the per-expert GEMMs
// (one device→host sync per MoE layer, as in the reference).
Status BuildExpertGroupsCuda(const int32_t* ids, const float* gates, int64_t M, int k, int64_t E, int32_t* offsets,
                             int32_t* rows, float* pair_gates, int32_t* pair_of, CudaStream stream);

// out[p, :] = x[rows[p], :] for p < P. x F32 [*, D], rows int32 [P], out F32 [P, D]; device.
Status GatherRowsCuda(const float* x, int64_t D, const int32_t* rows, int64_t P, float* out, CudaStream stream);

// h[r, :] += Σ_s pair_gates[p]·y[p, :] over the k pairs p = pair_of[r, s], added in ascending p (= expert)
// order, deterministic (no atomics). y F32 [P, D] in pair order, pair_of int32 [M, k], pair_gates F32
// [P], h F32 [M, D]; device. REQUIRES: k <= 16.
Status CombineGatedCuda(const float* y, int64_t D, const int32_t* pair_of, const float* pair_gates, int64_t M, int k,
                        float* h, CudaStream stream);

// y_sorted[offsets[e]:offsets[e+1], :] = x_sorted[same rows, :] · W_e for every expert with pairs:
// one MatmulCuda per expert on the caller's stream. host_offsets int32 [E + 1] (host memory);
// weights: host array of E device pointers, W_e `wt` [K, N] (or [N, K] when transposed), nullptr for
// an expert that is not here (its rows are left untouched). scratch: MatmulScratchBytes(max count, K).
// x_sorted F32 [P, K], y_sorted F32 [P, N], device.
Status ExpertMatmulCuda(const CublasHandle& handle, const float* x_sorted, const int32_t* host_offsets, int64_t E,
                        int64_t K, const void* const* weights, DType wt, int64_t N, bool transposed, float* y_sorted,
                        void* scratch, CudaStream stream);

}  // namespace brickrt::cuda
