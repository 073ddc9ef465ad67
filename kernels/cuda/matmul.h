// Matrix products on the GPU through cuBLAS: y = x·W with F32 activations and F32/F16/BF16 weights,
// F32 accumulation, for both weight layouts the bricks use ([K, N] expert tensors and [N, K]
// nn.Linear / lm_head tensors, see PackedMatrix::Pack's `transposed`).
#pragma once

#include <climits>
#include <cstddef>
#include <cstdint>

#include "core/dtype.h"
#include "core/status.h"
#include "kernels/cuda/memory.h"

namespace brickrt::cuda {

// A cuBLAS handle (cublasHandle_t kept opaque). Move-only. A handle is rebound to the stream of each
// call, so one handle must not be used from two threads at once: one per stream/thread.
class CublasHandle {
 public:
  CublasHandle() = default;
  CublasHandle(CublasHandle&& o) noexcept : h_(o.h_) { o.h_ = nullptr; }
  CublasHandle& operator=(CublasHandle&& o) noexcept;
  CublasHandle(const CublasHandle&) = delete;
  CublasHandle& operator=(const CublasHandle&) = delete;
  ~CublasHandle();

  // Unavailable without a device; Internal on other cuBLAS failures.
  static Result<CublasHandle> Create();
  void* get() const { return h_; }

 private:
  void* h_ = nullptr;
};

// Scratch bytes MatmulCuda needs for an x of M rows and K columns: cuBLAS GEMMs take both inputs in one
// type, so for F16/BF16 weights x is first rounded to the weight dtype (M·K·2 bytes); 0 for F32.
inline size_t MatmulScratchBytes(int64_t M, int64_t K, DType wt) {
  return wt == DType::kF32 ? 0 : static_cast<size_t>(M) * static_cast<size_t>(K) * DTypeSize(wt);
}

// y[M, N] = alpha · x[M, K] · W + beta · y, all device, row-major. W is `wt` [K, N] (w_transposed =
// false) or [N, K] (w_transposed = true, y = x·Wᵀ). beta = 0 never reads y. F32 weights: SGEMM-
// equivalent, F32 compute without TF32. F16/BF16 weights: x rounded to the weight dtype into `scratch`
// (MatmulScratchBytes), then cublasGemmEx with F32 accumulation and F32 output — the one numerical
// difference from the CPU, which widens W instead of narrowing x. K = 0 gives y = beta·y for beta 0
// (zeroed) or 1 (unchanged); other betas with K = 0 are InvalidArgument. Enqueued on `stream`;
// allocates nothing. REQUIRES: M, K, N < 2^31. InvalidArgument when scratch is missing for F16/BF16.
namespace detail {
// The product itself, for M, N, K >= 1 below 2^31: each backend (matmul.cu, the host emulation)
// implements only this; the size cases above are GemmCuda's, said once here.
Status GemmProduct(const CublasHandle& handle, const float* x, int64_t M, int64_t K, const void* w, DType wt, int64_t N,
                   bool w_transposed, float alpha, float beta, float* y, void* scratch, CudaStream stream);
}  // namespace detail

inline Status GemmCuda(const CublasHandle& handle, const float* x, int64_t M, int64_t K, const void* w, DType wt,
                       int64_t N, bool w_transposed, float alpha, float beta, float* y, void* scratch,
                       CudaStream stream) {
  if (M == 0 || N == 0) return Status::Ok();
  if (M > INT_MAX || K > INT_MAX || N > INT_MAX) return InvalidArgument("MatmulCuda: a dimension is >= 2^31");
  if (K == 0) {
    // No product to add: y = beta·y, which needs no launch for the two betas the callers use.
    if (beta == 0.0f) return ZeroDevice(y, static_cast<size_t>(M * N) * sizeof(float), stream);
    if (beta == 1.0f) return Status::Ok();
    return InvalidArgument("GemmCuda: K = 0 supports beta 0 or 1 only");
  }
  return detail::GemmProduct(handle, x, M, K, w, wt, N, w_transposed, alpha, beta, y, scratch, stream);
}

// y = x·W (overwrites y).
inline Status MatmulCuda(const CublasHandle& handle, const float* x, int64_t M, int64_t K, const void* w, DType wt,
                         int64_t N, bool w_transposed, float* y, void* scratch, CudaStream stream) {
  return GemmCuda(handle, x, M, K, w, wt, N, w_transposed, 1.0f, 0.0f, y, scratch, stream);
}

// y += alpha·x·W (cuBLAS beta = 1). For LoRA deltas, y += multiplier·(x·Aᵀ)·Bᵀ.
inline Status MatmulAddCuda(const CublasHandle& handle, const float* x, int64_t M, int64_t K, const void* w, DType wt,
                            int64_t N, bool w_transposed, float alpha, float* y, void* scratch, CudaStream stream) {
  return GemmCuda(handle, x, M, K, w, wt, N, w_transposed, alpha, 1.0f, y, scratch, stream);
}

}  // namespace brickrt::cuda
