// Stick-breaking attention: one block per query scans the keys newest first in blocks of 32 (the CPU's
// kStickBreakBlock): the block's logits by warps, the serial log-space scan by one thread (the same
// StickBreakStepAt arithmetic and stop test as kernels/cpu/variants.h), then the weighted values.
#include "kernels/cuda/cuda_util.cuh"
#include "kernels/cuda/stickbreak.h"

namespace brickrt::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kKeyBlock = 32;          // = kernels::internal::kStickBreakBlock
constexpr float kStopLog = -104.0f;    // = kernels::kStickBreakStopLog (spec G6)

// Query r = blockIdx.x (row r of q and out). Its keys: decode (positions == nullptr): 0..n_keys-1 of
// k, v. Prefill (rows == nullptr): 0..positions[r] of k, v. Pairs: query r belongs to token row
// rows[r], and sees keys 0..positions[rows[r]] of that row's cache, K = V = kv_of_row[rows[r]].
__global__ void StickBreakKernel(const float* q, int64_t ldq, const int32_t* rows, const int64_t* positions,
                                 int64_t n_keys, const float* k, const float* v, const float* const* kv_of_row,
                                 int64_t ldkv, int64_t d, float scale, float* out, int64_t ldo) {
  __shared__ float logits[kKeyBlock];
  __shared__ float weights[kKeyBlock];
  __shared__ int first_used;  // oldest key of this block that is accumulated (the scan may stop inside)
  __shared__ int stop;
  const int64_t r = blockIdx.x;
  const float* qr = q + r * ldq;
  float* o = out + r * ldo;
  int64_t keys = n_keys;
  if (rows != nullptr) {
    const int32_t row = rows[r];
    keys = positions[row] + 1;
    k = v = kv_of_row[row];
  } else if (positions != nullptr) {
    keys = positions[r] + 1;
  }
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x) o[i] = 0.0f;
  float rem = 0;  // log-remainder of the newer keys; only thread 0's copy is used
  for (int64_t end = keys; end > 0; end -= kKeyBlock) {
    const int64_t begin = end > kKeyBlock ? end - kKeyBlock : 0;
    const int n = static_cast<int>(end - begin);
    for (int j = warp; j < n; j += warps) {
      const float* kj = k + (begin + j) * ldkv;
      float dot = 0;
      for (int64_t i = lane; i < d; i += 32) dot += qr[i] * kj[i];
      dot = detail::WarpSum(dot);
      if (lane == 0) logits[j] = scale * dot;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      int used = 0, stopped = 0;
      for (int j = n - 1; j >= 0; --j) {
        // StickBreakStepAt: t = log1p(exp(−|l|)); a = exp(min(l,0) − t + r); r += min(−l,0) − t.
        const float l = logits[j];
        const float t = log1pf(expf(-fabsf(l)));
        // std::min(x, 0.0f) is (0 < x) ? 0 : x, spelled out: fminf would turn a NaN logit into 0.
        weights[j] = expf(((0.0f < l) ? 0.0f : l) - t + rem);
        rem = rem + (((0.0f < -l) ? 0.0f : -l) - t);
        used = j;
        if (rem < kStopLog) {
          stopped = 1;
          break;
        }
      }
      first_used = used;
      stop = stopped;
    }
    __syncthreads();
    const int lo = first_used;
    // Per output element the keys are added newest first, as on the CPU; zero weights are skipped
    // like the CPU's `if (s.a != 0)` (it matters only for inf/NaN values).
    for (int64_t i = threadIdx.x; i < d; i += blockDim.x) {
      float acc = o[i];
      for (int j = n - 1; j >= lo; --j) {
        const float a = weights[j];
        if (a != 0.0f) acc += a * v[(begin + j) * ldkv + i];
      }
      o[i] = acc;
    }
    const bool done = stop != 0;
    __syncthreads();  // logits/weights/first_used/stop are rewritten by the next block
    if (done) break;
  }
}

}  // namespace

Status StickBreakDecodeCuda(const float* q, const float* k, const float* v, int64_t ldkv, int64_t n_keys, int64_t d,
                            float scale, float* out, CudaStream stream) {
  if (d == 0) return Status::Ok();
  StickBreakKernel<<<1, kThreads, 0, detail::AsStream(stream)>>>(q, d, nullptr, nullptr, n_keys, k, v, nullptr,
                                                                 ldkv, d, scale, out, d);
  return detail::LaunchStatus("StickBreakDecode");
}

Status StickBreakPrefillCuda(const float* q, int64_t ldq, int64_t n, const int64_t* positions, const float* k,
                             const float* v, int64_t ldkv, int64_t d, float scale, float* out, int64_t ldo,
                             CudaStream stream) {
  if (n == 0 || d == 0) return Status::Ok();
  StickBreakKernel<<<static_cast<unsigned>(n), kThreads, 0, detail::AsStream(stream)>>>(
      q, ldq, nullptr, positions, 0, k, v, nullptr, ldkv, d, scale, out, ldo);
  return detail::LaunchStatus("StickBreakPrefill");
}

Status StickBreakPairsCuda(const float* q, int64_t ldq, int64_t P, const int32_t* rows, const int64_t* positions,
                           const float* const* kv_of_row, int64_t ldkv, int64_t d, float scale, float* out,
                           int64_t ldo, CudaStream stream) {
  if (P == 0 || d == 0) return Status::Ok();
  StickBreakKernel<<<static_cast<unsigned>(P), kThreads, 0, detail::AsStream(stream)>>>(
      q, ldq, rows, positions, 0, nullptr, nullptr, kv_of_row, ldkv, d, scale, out, ldo);
  return detail::LaunchStatus("StickBreakPairs");
}

}  // namespace brickrt::cuda
