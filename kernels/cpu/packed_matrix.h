// Weights repacked once at load into column panels, and the matmul that reads them: every panel is one
// sequential stream, so the decode GEMV keeps its accumulators in registers instead of in y.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "core/dtype.h"
#include "core/thread_pool.h"

namespace brickrt::kernels {

// Columns per panel: 4 zmm of F32 accumulators per row, 2 cache lines of BF16/F16 weights per k.
inline constexpr int64_t kPanelCols = 64;

// A weight matrix W [K, N] (y = x·W) repacked for MatmulPacked: column panels of kPanelCols columns;
// panel p holds W[0:K, 64p : 64p+64] as K rows of 64 contiguous elements (the last panel zero-padded),
// panels one after another. Within a row of a BF16 panel the columns are interleaved so that the
// kernels widen them with a shift and a mask (element 2i = column 32g+i, element 2i+1 = column
// 32g+16+i, for each 32-column half g); F32 and F16 rows are in natural column order.
// Immutable after Pack; copies share the storage.
class PackedMatrix {
 public:
  PackedMatrix() = default;

  // Packs `w`, either row-major [K, N] (transposed = false) or row-major [N, K] (transposed = true: the
  // nn.Linear / lm_head layout, y = x·Wᵀ), dtype F32, F16 or BF16, kept as is. Allocates
  // panels·K·64 elements, 64-byte aligned and pre-faulted. REQUIRES: K >= 0, N >= 0.
  static PackedMatrix Pack(const void* w, DType dtype, int64_t K, int64_t N, bool transposed);

  int64_t K() const { return k_; }
  int64_t N() const { return n_; }
  DType dtype() const { return dtype_; }
  int64_t panels() const { return (n_ + kPanelCols - 1) / kPanelCols; }
  // Bytes of packed storage (padding included).
  size_t bytes() const { return static_cast<size_t>(panels() * k_ * kPanelCols) * DTypeSize(dtype_); }
  // `dtype` [panels, K, 64] in the layout above; nullptr when empty.
  const void* data() const { return storage_.get(); }
  bool empty() const { return storage_ == nullptr; }

  // Writes W back as row-major [K, N] `dtype` into dst (K·N elements), bit for bit.
  void Unpack(void* dst) const;

 private:
  std::shared_ptr<uint8_t> storage_;
  int64_t k_ = 0;
  int64_t n_ = 0;
  DType dtype_ = DType::kF32;
};

// y[M, N] = x[M, K] · W, x and y F32 row-major, F32 accumulation. Same contract as Matmul: overwrites
// y, does not allocate, splits over `pool` (nullptr: calling thread only). M <= 8 takes the streaming
// GEMV path, larger M a register-tiled GEMM. x F32 [M, w.K()], y F32 [M, w.N()].
void MatmulPacked(const float* x, int64_t M, const PackedMatrix& w, float* y, ThreadPool* pool);

}  // namespace brickrt::kernels
