// cuBLAS matmuls: row-major y = x·W expressed as the column-major product yᵀ = Wᵀ·xᵀ.
#include <cublas_v2.h>

#include <utility>

#include "kernels/cuda/cuda_util.cuh"
#include "kernels/cuda/matmul.h"

namespace brickrt::cuda {
namespace {

constexpr int kThreads = 256;

Status CheckCublas(cublasStatus_t s, const char* what) {
  if (s == CUBLAS_STATUS_SUCCESS) return Status::Ok();
  const StatusCode code = s == CUBLAS_STATUS_NOT_INITIALIZED ? StatusCode::kUnavailable : StatusCode::kInternal;
  return Status(code,
                std::string("cuBLAS ") + what + ": " + cublasGetStatusName(s) + " (" + cublasGetStatusString(s) + ")");
}

template <typename T>
__device__ inline T Narrow(float f);
template <>
__device__ inline __nv_bfloat16 Narrow<__nv_bfloat16>(float f) {
  return __float2bfloat16_rn(f);
}
template <>
__device__ inline __half Narrow<__half>(float f) {
  return __float2half_rn(f);
}

template <typename T>
__global__ void NarrowKernel(const float* x, int64_t n, T* out) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    out[i] = Narrow<T>(x[i]);
  }
}

}  // namespace

CublasHandle& CublasHandle::operator=(CublasHandle&& o) noexcept {
  if (this != &o) {
    if (h_ != nullptr) cublasDestroy(static_cast<cublasHandle_t>(h_));
    h_ = o.h_;
    o.h_ = nullptr;
  }
  return *this;
}

CublasHandle::~CublasHandle() {
  if (h_ != nullptr) cublasDestroy(static_cast<cublasHandle_t>(h_));
}

Result<CublasHandle> CublasHandle::Create() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) {
    cudaGetLastError();
    return Unavailable("cuBLAS: no CUDA device");
  }
  cublasHandle_t h = nullptr;
  BRICK_RETURN_IF_ERROR(CheckCublas(cublasCreate(&h), "create handle"));
  CublasHandle out;
  out.h_ = h;
  // Default math: F32 GEMMs stay F32 because MatmulCuda asks for CUBLAS_COMPUTE_32F (not *_FAST_TF32);
  // only NVIDIA_TF32_OVERRIDE=1 in the environment would change that. Pedantic mode is not needed and
  // would rule out the fast BF16/F16 tensor-core kernels.
  BRICK_RETURN_IF_ERROR(CheckCublas(cublasSetMathMode(h, CUBLAS_DEFAULT_MATH), "set math mode"));
  return Result<CublasHandle>(std::move(out));
}

// GemmCuda's product (matmul.h): y = alpha·x·W + beta·y, beta 0 never reading y.
Status detail::GemmProduct(const CublasHandle& handle, const float* x, int64_t M, int64_t K, const void* w, DType wt,
                           int64_t N, bool w_transposed, float alpha, float beta, float* y, void* scratch,
                           CudaStream stream) {
  const cudaStream_t s = detail::AsStream(stream);
  auto h = static_cast<cublasHandle_t>(handle.get());
  BRICK_RETURN_IF_ERROR(CheckCublas(cublasSetStream(h, s), "set stream"));

  const void* xin = x;
  cudaDataType_t in_type = CUDA_R_32F;
  if (wt != DType::kF32) {
    if (scratch == nullptr) return InvalidArgument("MatmulCuda: F16/BF16 weights need MatmulScratchBytes of scratch");
    const int64_t n = M * K;
    const unsigned blocks = static_cast<unsigned>(std::min<int64_t>((n + kThreads - 1) / kThreads, 65535));
    if (wt == DType::kBF16) {
      NarrowKernel<<<blocks, kThreads, 0, s>>>(x, n, static_cast<__nv_bfloat16*>(scratch));
      in_type = CUDA_R_16BF;
    } else {
      NarrowKernel<<<blocks, kThreads, 0, s>>>(x, n, static_cast<__half*>(scratch));
      in_type = CUDA_R_16F;
    }
    BRICK_RETURN_IF_ERROR(detail::LaunchStatus("narrow activations"));
    xin = scratch;
  }
  // Column-major view: yᵀ [N, M] (ld N) = op(A) [N, K] · xᵀ [K, M] (ld K).
  //   W row-major [K, N] is column-major [N, K] with ld N: op = N.
  //   W row-major [N, K] is column-major [K, N] with ld K: op = T.
  const int m = static_cast<int>(N), n = static_cast<int>(M), k = static_cast<int>(K);
  const cublasOperation_t op_w = w_transposed ? CUBLAS_OP_T : CUBLAS_OP_N;
  const int ldw = w_transposed ? k : m;
  return CheckCublas(cublasGemmEx(h, op_w, CUBLAS_OP_N, m, n, k, &alpha, w, in_type, ldw, xin, in_type, k, &beta, y,
                                  CUDA_R_32F, m, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                     "GemmEx");
}

}  // namespace brickrt::cuda
