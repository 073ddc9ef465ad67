// Emulated matmul.h: what the cuBLAS path computes, with the .cu's checks. F16/BF16 weights: x is first
// rounded to the weight dtype (RNE) into the caller's scratch, which must be device memory of
// MatmulScratchBytes; then products of the widened values accumulate in F32, like cublasGemmEx with
// CUBLAS_COMPUTE_32F (the summation order over K is sequential here, a tree or split on the GPU).
#include <utility>
#include <vector>

#include "core/dtype.h"
#include "kernels/cuda/matmul.h"
#include "kernels/cuda_emul/shadow.h"

namespace brickrt::cuda {

CublasHandle& CublasHandle::operator=(CublasHandle&& o) noexcept {
  if (this != &o) {
    if (h_ != nullptr) emul::DeleteToken(emul::Token::kCublas, h_);
    h_ = o.h_;
    o.h_ = nullptr;
  }
  return *this;
}

CublasHandle::~CublasHandle() {
  if (h_ != nullptr) emul::DeleteToken(emul::Token::kCublas, h_);
}

Result<CublasHandle> CublasHandle::Create() {
  CublasHandle out;
  out.h_ = emul::NewToken(emul::Token::kCublas);
  return Result<CublasHandle>(std::move(out));
}

// GemmCuda's product (matmul.h) on the host.
Status detail::GemmProduct(const CublasHandle& handle, const float* x, int64_t M, int64_t K, const void* w, DType wt,
                           int64_t N, bool w_transposed, float alpha, float beta, float* y, void* scratch,
                           CudaStream stream) {
  if (!emul::IsLive(emul::Token::kCublas, handle.get()))
    return Unavailable("cuBLAS set stream: CUBLAS_STATUS_NOT_INITIALIZED (the handle was not created or is gone)");
  BRICK_RETURN_IF_ERROR(emul::CheckStream(stream, "MatmulCuda"));
  if (!emul::ClaimHandle(handle.get()))
    return InvalidArgument("MatmulCuda: the CublasHandle is in use by another thread (one handle per stream/thread)");
  struct Release {
    const void* h;
    ~Release() { emul::ReleaseHandle(h); }
  } release{handle.get()};
  const size_t mk = static_cast<size_t>(M * K);
  BRICK_ASSIGN_OR_RETURN(const float* xs, emul::Shadow(x, mk, "MatmulCuda: x"));
  BRICK_ASSIGN_OR_RETURN(const void* ws,
                         emul::ShadowBytes(w, static_cast<size_t>(K * N) * DTypeSize(wt), "MatmulCuda: w"));
  BRICK_ASSIGN_OR_RETURN(float* yd, emul::Shadow(y, static_cast<size_t>(M * N), "MatmulCuda: y"));
  std::vector<float> product(static_cast<size_t>(M * N));  // x·W; then y = alpha·product + beta·y
  float* ys = product.data();

  std::vector<float> xin(xs, xs + mk);  // x as the GEMM sees it
  if (wt != DType::kF32) {
    if (scratch == nullptr) return InvalidArgument("MatmulCuda: F16/BF16 weights need MatmulScratchBytes of scratch");
    BRICK_ASSIGN_OR_RETURN(void* ss, emul::ShadowBytes(scratch, MatmulScratchBytes(M, K, wt),
                                                       "MatmulCuda: scratch of MatmulScratchBytes(M, K, wt)"));
    ConvertFromF32(xin.data(), mk, wt, ss);  // the narrowing kernel, RNE
    ConvertToF32(ss, wt, mk, xin.data());
  }
  const size_t es = DTypeSize(wt);
  const auto* wb = static_cast<const char*>(ws);
  if (!w_transposed) {
    // W [K, N]: y[m, :] = Σ_k x[m, k]·W[k, :], k ascending, F32.
    std::vector<float> row(static_cast<size_t>(N));
    for (int64_t i = 0; i < M * N; ++i) ys[i] = 0.0f;
    for (int64_t k = 0; k < K; ++k) {
      ConvertToF32(wb + static_cast<size_t>(k * N) * es, wt, row.size(), row.data());
      for (int64_t m = 0; m < M; ++m) {
        const float a = xin[static_cast<size_t>(m * K + k)];
        float* yr = ys + m * N;
        for (int64_t n = 0; n < N; ++n) yr[n] += a * row[static_cast<size_t>(n)];
      }
    }
  } else {
    // W [N, K]: y[m, n] = <x[m, :], W[n, :]>, k ascending, F32.
    std::vector<float> row(static_cast<size_t>(K));
    for (int64_t n = 0; n < N; ++n) {
      ConvertToF32(wb + static_cast<size_t>(n * K) * es, wt, row.size(), row.data());
      for (int64_t m = 0; m < M; ++m) {
        const float* xr = xin.data() + m * K;
        float acc = 0.0f;
        for (int64_t k = 0; k < K; ++k) acc += xr[k] * row[static_cast<size_t>(k)];
        ys[m * N + n] = acc;
      }
    }
  }
  for (int64_t i = 0; i < M * N; ++i) yd[i] = beta == 0.0f ? alpha * ys[i] : alpha * ys[i] + beta * yd[i];
  return Status::Ok();
}

}  // namespace brickrt::cuda
