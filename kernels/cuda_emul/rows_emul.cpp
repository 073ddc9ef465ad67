// Emulated rows.h: the embedding gather (exact widening, NaN rows for ids outside the table), rows into
// per-sequence caches, and the bias add, with the .cu's checks. Every pointer read from device memory
// (a cache row's destination) is checked against the allocation it addresses.
#include <limits>
#include <string>

#include "kernels/cuda/rows.h"
#include "kernels/cuda_emul/shadow.h"

namespace brickrt::cuda {

Status EmbeddingRowsCuda(const void* table, DType dt, int64_t V, int64_t D, const int32_t* ids, int64_t n, float* out,
                         CudaStream stream) {
  BRICK_RETURN_IF_ERROR(internal::CheckEmbeddingRows(V, D, n));
  if (n == 0 || D == 0) return Status::Ok();
  BRICK_RETURN_IF_ERROR(emul::CheckStream(stream, "EmbeddingRowsCuda"));
  BRICK_ASSIGN_OR_RETURN(const int32_t* id, emul::Shadow(ids, static_cast<size_t>(n), "EmbeddingRowsCuda: ids"));
  BRICK_ASSIGN_OR_RETURN(float* o, emul::Shadow(out, static_cast<size_t>(n * D), "EmbeddingRowsCuda: out"));
  const size_t row_bytes = static_cast<size_t>(D) * DTypeSize(dt);
  for (int64_t i = 0; i < n; ++i) {
    float* dst = o + i * D;
    if (id[i] < 0 || id[i] >= V) {
      for (int64_t j = 0; j < D; ++j) dst[j] = std::numeric_limits<float>::quiet_NaN();
      continue;
    }
    BRICK_ASSIGN_OR_RETURN(void* src,
                           emul::ShadowBytes(static_cast<const char*>(table) + id[i] * row_bytes, row_bytes,
                                             "EmbeddingRowsCuda: row " + std::to_string(id[i]) + " of table"));
    ConvertToF32(src, dt, static_cast<size_t>(D), dst);
  }
  return Status::Ok();
}

Status WriteRowsCuda(const float* x, int64_t n, int64_t D, float* const* dst_of_row, const int64_t* positions,
                     int64_t ld, CudaStream stream) {
  BRICK_RETURN_IF_ERROR(internal::CheckWriteRows(n, D, ld));
  if (n == 0 || D == 0) return Status::Ok();
  BRICK_RETURN_IF_ERROR(emul::CheckStream(stream, "WriteRowsCuda"));
  BRICK_ASSIGN_OR_RETURN(const float* xs, emul::Shadow(x, static_cast<size_t>(n * D), "WriteRowsCuda: x"));
  BRICK_ASSIGN_OR_RETURN(float* const* dst,
                         emul::Shadow(dst_of_row, static_cast<size_t>(n), "WriteRowsCuda: dst_of_row"));
  BRICK_ASSIGN_OR_RETURN(const int64_t* pos,
                         emul::Shadow(positions, static_cast<size_t>(n), "WriteRowsCuda: positions"));
  for (int64_t r = 0; r < n; ++r) {
    BRICK_ASSIGN_OR_RETURN(float* row, emul::Shadow(dst[r] + pos[r] * ld, static_cast<size_t>(D),
                                                    "WriteRowsCuda: row " + std::to_string(r) + " at position " +
                                                        std::to_string(pos[r]) + " of its cache"));
    for (int64_t j = 0; j < D; ++j) row[j] = xs[r * D + j];
  }
  return Status::Ok();
}

Status AddBiasCuda(float* x, int64_t M, int64_t N, const float* b, CudaStream stream) {
  BRICK_RETURN_IF_ERROR(internal::CheckRows("AddBiasCuda", M, N));
  if (M == 0 || N == 0) return Status::Ok();
  BRICK_RETURN_IF_ERROR(emul::CheckStream(stream, "AddBiasCuda"));
  BRICK_ASSIGN_OR_RETURN(float* xs, emul::Shadow(x, static_cast<size_t>(M * N), "AddBiasCuda: x"));
  BRICK_ASSIGN_OR_RETURN(const float* bs, emul::Shadow(b, static_cast<size_t>(N), "AddBiasCuda: b"));
  for (int64_t m = 0; m < M; ++m)
    for (int64_t j = 0; j < N; ++j) xs[m * N + j] += bs[j];
  return Status::Ok();
}

}  // namespace brickrt::cuda
