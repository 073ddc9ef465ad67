// Grouped GEMV over the gathered (token, expert) pairs of a MoE block, for decode-sized P: every pair's
// expert is found on the device from the group offsets (no device→host copy, one launch for all
// experts), and F16/BF16 weights are widened in registers against F32 activations, so the result is
// the CPU's arithmetic up to the order of F32 summation (the cuBLAS path rounds x to BF16/F16 instead).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "core/dtype.h"
#include "core/status.h"
#include "kernels/cuda/memory.h"

namespace brickrt::cuda {

namespace internal {
// The launch rule (expert_gemv.cu): a block is up to kGemvMaxThreads threads, each owning 16 bytes of
// consecutive weight columns (8 F16/BF16 or 4 F32), so a column tile is at most kGemvMaxTile columns;
// it handles the pairs of one chunk of kGemvPairsPerBlock consecutive pairs (each weight row read once
// per run of pairs with one expert); K is split so that the grid has about kGemvTargetBlocks blocks
// (4 per SM of a 132-SM H100), at most kGemvMaxSplits splits of at least kGemvMinRows rows each.
inline constexpr int64_t kGemvMaxThreads = 128;
inline constexpr int64_t kGemvMaxTile = kGemvMaxThreads * 8;
inline constexpr int64_t kGemvPairsPerBlock = 4;
inline constexpr int64_t kGemvTargetBlocks = 4 * 132;
inline constexpr int64_t kGemvMaxSplits = 256;
inline constexpr int64_t kGemvMinRows = 16;
inline constexpr int64_t kGemvMaxDim = 0x7fffffff;

// The most K splits any call with P pairs and N columns can use (whatever K and the dtype): the column
// tile is never wider than kGemvMaxTile.
inline int64_t ExpertGemvMaxSplits(int64_t P, int64_t N) {
  if (P <= 0 || N <= 0) return 1;
  const int64_t base = ((P + kGemvPairsPerBlock - 1) / kGemvPairsPerBlock) * ((N + kGemvMaxTile - 1) / kGemvMaxTile);
  const int64_t want = (kGemvTargetBlocks + base - 1) / base;
  return want < kGemvMaxSplits ? want : kGemvMaxSplits;
}

// The expert whose pair range [offsets[e], offsets[e+1]) holds pair p: the largest e < E with
// offsets[e] <= p, by binary search over the device offsets (the kernel, per pair; the emulation uses the
// same code); -1 when p lies outside [offsets[0], offsets[E]). In [0, E) otherwise even for malformed
// (non-monotonic) offsets, so the weights array is never indexed out of bounds.
#if defined(__CUDACC__)
#define BRICK_EXPERT_GEMV_HD __host__ __device__
#else
#define BRICK_EXPERT_GEMV_HD
#endif
BRICK_EXPERT_GEMV_HD inline int64_t ExpertOfPair(const int32_t* offsets, int64_t E, int64_t p) {
  if (p < offsets[0] || p >= offsets[E]) return -1;
  int64_t lo = 0, hi = E - 1;  // offsets[lo] <= p
  while (lo < hi) {
    const int64_t mid = (lo + hi + 1) / 2;
    if (offsets[mid] <= p) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  return lo;
}
#undef BRICK_EXPERT_GEMV_HD

// The argument checks ExpertGemvCuda makes before any launch (expert_gemv.cu and its emulation).
inline Status CheckExpertGemv(int64_t ldx, int64_t P, int64_t K, int64_t E, DType wt, int64_t N, int64_t ldy,
                              const void* scratch, size_t scratch_bytes) {
  const std::string op = "ExpertGemvCuda: ";
  if (P < 0 || K < 0 || N < 0) return InvalidArgument(op + "negative size");
  if (P > kGemvMaxDim || K > kGemvMaxDim || N > kGemvMaxDim || E > kGemvMaxDim || ldx > kGemvMaxDim ||
      ldy > kGemvMaxDim)
    return InvalidArgument(op + "a dimension or stride is >= 2^31");
  if (E < 1) return InvalidArgument(op + "need E >= 1");
  if (ldx < K) return InvalidArgument(op + "ldx below K");
  if (ldy < N) return InvalidArgument(op + "ldy below N");
  if (wt != DType::kF32 && wt != DType::kF16 && wt != DType::kBF16)
    return InvalidArgument(op + "weights must be F32, F16 or BF16, not " + DTypeName(wt));
  if (scratch == nullptr && scratch_bytes > 0)
    return InvalidArgument(op + "missing scratch of ExpertGemvScratchBytes(P, N) = " + std::to_string(scratch_bytes) +
                           " bytes");
  return Status::Ok();
}
}  // namespace internal

// Device scratch ExpertGemvCuda needs for P pairs and N output columns: the split-K partial sums,
// F32 [P, splits, N] for the most splits the launch rule can choose. 0 (no scratch needed) when the
// rule never splits K at that size, e.g. prefill-sized P·N.
inline size_t ExpertGemvScratchBytes(int64_t P, int64_t N) {
  const int64_t splits = internal::ExpertGemvMaxSplits(P, N);
  if (splits <= 1) return 0;
  return static_cast<size_t>(P) * static_cast<size_t>(splits) * static_cast<size_t>(N) * sizeof(float);
}

// y[p, :] = x[p, :] · W_{e(p)} for P gathered (token, expert) pairs, where e(p) is the expert whose pair
// range [offsets[e], offsets[e+1]) contains p (offsets: device int32 [E + 1], non-decreasing, as
// BuildExpertGroupsCuda writes them; found per pair by binary search on the device). weights: DEVICE
// array of E device pointers, each `wt` [K, N] row-major (nullptr: the expert is not on this GPU and its
// pairs' rows of y are left untouched; so are the rows of pairs outside [offsets[0], offsets[E])).
// x F32 [P, K] (row stride ldx), y F32 [P, N] (row stride ldy), device, not overlapping. F32
// activations, weights widened exactly in registers, F32 accumulation: the CPU's arithmetic up to
// summation order (split-K partial sums added in split order, deterministic: no atomics). K = 0 zeroes
// the computed rows. scratch: device, ExpertGemvScratchBytes(P, N) bytes (may be null when that is 0).
// For decode-sized P: an expert's weights are read once per run of its pairs within each chunk of 4
// consecutive pairs, so large P re-reads them (the cuBLAS path stays for prefill). InvalidArgument
// (before any launch): a dimension or stride >= 2^31, ldx < K, ldy < N, E < 1, a dtype other than
// F32/F16/BF16, missing scratch. P = 0 or N = 0: OK without a launch.
// Enqueued on `stream`; allocates nothing, never synchronizes.
Status ExpertGemvCuda(const float* x, int64_t ldx, int64_t P, int64_t K, const int32_t* offsets, int64_t E,
                      const void* const* weights, DType wt, int64_t N, float* y, int64_t ldy, void* scratch,
                      CudaStream stream);

}  // namespace brickrt::cuda
