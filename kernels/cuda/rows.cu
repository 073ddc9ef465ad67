// Row movement kernels: embedding gather with widening, rows into per-sequence caches, bias add.
#include "kernels/cuda/cuda_util.cuh"
#include "kernels/cuda/rows.h"

namespace brickrt::cuda {
namespace {

constexpr int kThreads = 256;

__global__ void EmbeddingRowsKernel(const void* table, DType dt, int64_t V, int64_t D, const int32_t* ids, float* out) {
  const int32_t id = ids[blockIdx.x];
  float* dst = out + blockIdx.x * D;
  if (id < 0 || id >= V) {
    for (int64_t i = threadIdx.x; i < D; i += blockDim.x) dst[i] = __int_as_float(0x7fc00000);  // NaN
    return;
  }
  const int64_t base = static_cast<int64_t>(id) * D;
  for (int64_t i = threadIdx.x; i < D; i += blockDim.x) dst[i] = detail::LoadWidened(table, dt, base + i);
}

__global__ void WriteRowsKernel(const float* x, int64_t D, float* const* dst_of_row, const int64_t* positions,
                                int64_t ld) {
  const float* src = x + blockIdx.x * D;
  float* dst = dst_of_row[blockIdx.x] + positions[blockIdx.x] * ld;
  for (int64_t i = threadIdx.x; i < D; i += blockDim.x) dst[i] = src[i];
}

__global__ void AddBiasKernel(float* x, int64_t total, int64_t N, const float* b) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    x[i] += b[i % N];
  }
}

}  // namespace

Status EmbeddingRowsCuda(const void* table, DType dt, int64_t V, int64_t D, const int32_t* ids, int64_t n, float* out,
                         CudaStream stream) {
  BRICK_RETURN_IF_ERROR(internal::CheckEmbeddingRows(V, D, n));
  if (n == 0 || D == 0) return Status::Ok();
  EmbeddingRowsKernel<<<static_cast<unsigned>(n), kThreads, 0, detail::AsStream(stream)>>>(table, dt, V, D, ids, out);
  return detail::LaunchStatus("EmbeddingRows");
}

Status WriteRowsCuda(const float* x, int64_t n, int64_t D, float* const* dst_of_row, const int64_t* positions,
                     int64_t ld, CudaStream stream) {
  BRICK_RETURN_IF_ERROR(internal::CheckWriteRows(n, D, ld));
  if (n == 0 || D == 0) return Status::Ok();
  WriteRowsKernel<<<static_cast<unsigned>(n), kThreads, 0, detail::AsStream(stream)>>>(x, D, dst_of_row, positions, ld);
  return detail::LaunchStatus("WriteRows");
}

Status AddBiasCuda(float* x, int64_t M, int64_t N, const float* b, CudaStream stream) {
  BRICK_RETURN_IF_ERROR(internal::CheckRows("AddBiasCuda", M, N));
  if (M == 0 || N == 0) return Status::Ok();
  const int64_t total = M * N, blocks = (total + kThreads - 1) / kThreads;
  const unsigned grid = static_cast<unsigned>(blocks < 65535 ? blocks : 65535);  // grid-stride covers the rest
  AddBiasKernel<<<grid, kThreads, 0, detail::AsStream(stream)>>>(x, total, N, b);
  return detail::LaunchStatus("AddBias");
}

}  // namespace brickrt::cuda
