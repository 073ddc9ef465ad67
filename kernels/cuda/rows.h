// Row movement on the GPU for a whole-model step (bricks/cuda/cuda_session.h): embedding rows widened
// to F32, the new LN₁ rows written into each sequence's cache, a bias added to every row.
#pragma once

#include <cstdint>
#include <string>

#include "core/dtype.h"
#include "core/status.h"
#include "kernels/cuda/memory.h"

namespace brickrt::cuda {

// out[i, :] = table[ids[i], :] widened to F32 (exact, like Embedding::Lookup). table `dt` [V, D],
// ids int32 [n], out F32 [n, D]; all device. An id outside [0, V) gives a row of NaN: the caller
// validates ids, and the table is never read out of bounds. One block per row; allocates nothing.
Status EmbeddingRowsCuda(const void* table, DType dt, int64_t V, int64_t D, const int32_t* ids, int64_t n, float* out,
                         CudaStream stream);

// dst_of_row[r][positions[r]·ld + j] = x[r·D + j] for r < n, j < D: each row into its sequence's cache
// at its position. x F32 [n, D], dst_of_row: [n] device pointers (F32, row stride ld), positions int64
// [n]; all device. REQUIRES: ld >= D (InvalidArgument). One block per row; allocates nothing.
Status WriteRowsCuda(const float* x, int64_t n, int64_t D, float* const* dst_of_row, const int64_t* positions,
                     int64_t ld, CudaStream stream);

// x[m, :] += b for m < M (the router's hidden bias, as Router::Route adds it). x F32 [M, N], b F32 [N];
// device. Grid-stride; allocates nothing.
Status AddBiasCuda(float* x, int64_t M, int64_t N, const float* b, CudaStream stream);

namespace internal {
// The argument checks each entry point above makes before any launch (rows.cu and its emulation).
inline Status CheckRows(const char* op, int64_t n, int64_t width) {
  if (n < 0 || width < 0) return InvalidArgument(std::string(op) + ": negative size");
  if (n > 0x7fffffff) return InvalidArgument(std::string(op) + ": more than 2^31 - 1 rows");
  return Status::Ok();
}
inline Status CheckEmbeddingRows(int64_t V, int64_t D, int64_t n) {
  if (V < 0) return InvalidArgument("EmbeddingRowsCuda: negative vocabulary");
  return CheckRows("EmbeddingRowsCuda", n, D);
}
inline Status CheckWriteRows(int64_t n, int64_t D, int64_t ld) {
  if (ld < D) return InvalidArgument("WriteRowsCuda: row stride below the row width");
  return CheckRows("WriteRowsCuda", n, D);
}
}  // namespace internal

}  // namespace brickrt::cuda
