// PackedMatrix (pack/unpack between row-major and column panels), the MatmulPacked dispatcher and
// thread split, and the portable panel kernel (plain loops GCC vectorizes for any x86-64).
#include "kernels/cpu/packed_matrix.h"

#include <algorithm>
#include <cstring>

#include "core/status.h"
#include "core/tensor.h"
#include "kernels/cpu/variants.h"

namespace brickrt::kernels {
namespace {

// GEMM task: this many rows over one panel (the panel's K blocks are reused by all of them).
constexpr int64_t kGemmTaskRows = 96;

// Calls f(panel_index, row_index) for every element of W: its index in the panels and in row-major
// W [K, N] (or [N, K] when transposed). Transposed sources are walked along their rows (sequential
// reads, writes scattered over one panel, which stays in L2; 64-row tiles measured ~1.5x slower).
template <typename Fn>
void ForEachElement(DType dt, int64_t K, int64_t N, bool transposed, Fn&& f) {
  int64_t slot[kPanelCols];
  for (int64_t j = 0; j < kPanelCols; ++j) slot[j] = internal::PanelSlot(dt, j);
  const int64_t n_panels = (N + kPanelCols - 1) / kPanelCols;
  for (int64_t p = 0; p < n_panels; ++p) {
    const int64_t base = p * K * kPanelCols;
    const int64_t n0 = p * kPanelCols, cols = std::min(kPanelCols, N - n0);
    if (transposed) {
      for (int64_t j = 0; j < cols; ++j) {
        for (int64_t k = 0; k < K; ++k) f(base + k * kPanelCols + slot[j], (n0 + j) * K + k);
      }
    } else {
      for (int64_t k = 0; k < K; ++k) {
        for (int64_t j = 0; j < cols; ++j) f(base + k * kPanelCols + slot[j], k * N + n0 + j);
      }
    }
  }
}

// Bit-exact element copies (E: uint32_t for F32, uint16_t for F16/BF16).
template <typename E>
void PackT(const E* src, E* panels, DType dt, int64_t K, int64_t N, bool transposed) {
  if (transposed) {
    ForEachElement(dt, K, N, true, [&](int64_t pi, int64_t ri) { panels[pi] = src[ri]; });
    return;
  }
  // [K, N] (the expert layout, most of a model): whole 64-column rows as plain or interleaving
  // copies that GCC vectorizes (Pack measured ~2x faster than with the per-element loop, the rest
  // being mostly the page faults of the new allocation); the last, partial panel element by element.
  const int64_t full = N / kPanelCols;
  for (int64_t p = 0; p < full; ++p) {
    for (int64_t k = 0; k < K; ++k) {
      const E* s = src + k * N + p * kPanelCols;
      E* d = panels + (p * K + k) * kPanelCols;
      if (dt == DType::kBF16) {
        for (int64_t h = 0; h < kPanelCols; h += 32) {
          for (int64_t i = 0; i < 16; ++i) {
            d[h + 2 * i] = s[h + i];
            d[h + 2 * i + 1] = s[h + 16 + i];
          }
        }
      } else {
        std::memcpy(d, s, kPanelCols * sizeof(E));
      }
    }
  }
  if (full * kPanelCols == N) return;
  int64_t slot[kPanelCols];
  for (int64_t j = 0; j < kPanelCols; ++j) slot[j] = internal::PanelSlot(dt, j);
  for (int64_t k = 0; k < K; ++k) {
    E* d = panels + (full * K + k) * kPanelCols;
    for (int64_t j = 0; j < N - full * kPanelCols; ++j) d[slot[j]] = src[k * N + full * kPanelCols + j];
  }
}
template <typename E>
void UnpackT(const E* panels, E* dst, DType dt, int64_t K, int64_t N) {
  ForEachElement(dt, K, N, false, [&](int64_t pi, int64_t ri) { dst[ri] = panels[pi]; });
}

using PackedRangeFn = void (*)(const float*, int64_t, const void*, DType, int64_t, float*, int64_t, int64_t, int64_t,
                               int64_t);

void MatmulPackedWith(PackedRangeFn range, const float* x, int64_t M, const PackedMatrix& w, float* y,
                      ThreadPool* pool) {
  const int64_t K = w.K(), N = w.N();
  BRICK_ASSERT(M >= 0, "MatmulPacked: negative M");
  if (M == 0 || N == 0) return;
  if (K == 0) {
    std::memset(y, 0, static_cast<size_t>(M * N) * sizeof(float));
    return;
  }
  const void* data = w.data();
  const DType dt = w.dtype();
  const int64_t panels = w.panels();
  const int n_threads =
      (pool == nullptr || w.bytes() < static_cast<size_t>(internal::kMinParallelBytes)) ? 1 : pool->size();
  if (M <= internal::kGemvMaxRows) {
    // One contiguous panel range per thread: each thread reads one sequential stream.
    const int64_t tasks = std::min<int64_t>(n_threads, panels);
    if (tasks <= 1) {
      range(x, K, data, dt, N, y, 0, M, 0, panels);
      return;
    }
    pool->ParallelFor(tasks, [&](int64_t t, int) {
      range(x, K, data, dt, N, y, 0, M, panels * t / tasks, panels * (t + 1) / tasks);
    });
    return;
  }
  const int64_t row_tiles = (M + kGemmTaskRows - 1) / kGemmTaskRows;
  auto run = [&](int64_t t, int) {
    // Panel-major order: consecutive tasks share a panel while it is still in cache.
    const int64_t p = t / row_tiles, rt = t % row_tiles;
    range(x, K, data, dt, N, y, rt * kGemmTaskRows, std::min(M, (rt + 1) * kGemmTaskRows), p, p + 1);
  };
  if (n_threads <= 1) {
    for (int64_t t = 0; t < panels * row_tiles; ++t) run(t, 0);
  } else {
    pool->ParallelFor(panels * row_tiles, run);
  }
}

}  // namespace

PackedMatrix PackedMatrix::Pack(const void* w, DType dtype, int64_t K, int64_t N, bool transposed) {
  BRICK_ASSERT(K >= 0 && N >= 0, "PackedMatrix::Pack: negative shape");
  PackedMatrix m;
  m.k_ = K;
  m.n_ = N;
  m.dtype_ = dtype;
  // Pre-faulted zeros: the padding columns of the last panel must be 0 (the kernels multiply them).
  m.storage_ = AllocateAligned(m.bytes(), /*prefault=*/true);
  if (dtype == DType::kF32) {
    PackT(static_cast<const uint32_t*>(w), reinterpret_cast<uint32_t*>(m.storage_.get()), dtype, K, N, transposed);
  } else {
    PackT(static_cast<const uint16_t*>(w), reinterpret_cast<uint16_t*>(m.storage_.get()), dtype, K, N, transposed);
  }
  return m;
}

void PackedMatrix::Unpack(void* dst) const {
  if (storage_ == nullptr) return;
  if (dtype_ == DType::kF32) {
    UnpackT(reinterpret_cast<const uint32_t*>(storage_.get()), static_cast<uint32_t*>(dst), dtype_, k_, n_);
  } else {
    UnpackT(reinterpret_cast<const uint16_t*>(storage_.get()), static_cast<uint16_t*>(dst), dtype_, k_, n_);
  }
}

namespace internal {
namespace {

// Portable block: up to kRows rows × one panel over k in [0, K). The accumulators follow the stored
// element order (so the widening and the FMA loops are plain, vectorizable loops); columns are
// put back in order by PanelSlot at the store.
constexpr int64_t kRows = 4;

template <typename E, float (*kWiden)(E)>
void PortablePanel(const float* x, int64_t K, const E* panel, DType dt, int64_t N, float* y, int64_t m0, int64_t m1,
                   int64_t n0) {
  float acc[kRows][kPanelCols] = {};
  float wrow[kPanelCols];
  const int64_t rows = m1 - m0;
  for (int64_t k = 0; k < K; ++k) {
    const E* src = panel + k * kPanelCols;
    for (int64_t s = 0; s < kPanelCols; ++s) wrow[s] = kWiden(src[s]);
    for (int64_t r = 0; r < rows; ++r) {
      const float xv = x[(m0 + r) * K + k];
      for (int64_t s = 0; s < kPanelCols; ++s) acc[r][s] += xv * wrow[s];
    }
  }
  const int64_t cols = std::min(kPanelCols, N - n0);
  for (int64_t r = 0; r < rows; ++r) {
    float* yr = y + (m0 + r) * N + n0;
    for (int64_t j = 0; j < cols; ++j) yr[j] = acc[r][PanelSlot(dt, j)];
  }
}

float WidenF32(uint32_t v) {
  float f;
  std::memcpy(&f, &v, 4);
  return f;
}

template <typename E, float (*kWiden)(E)>
void PortableRange(const float* x, int64_t K, const E* panels, DType dt, int64_t N, float* y, int64_t m0, int64_t m1,
                   int64_t p0, int64_t p1) {
  for (int64_t p = p0; p < p1; ++p) {
    for (int64_t m = m0; m < m1; m += kRows) {
      PortablePanel<E, kWiden>(x, K, panels + p * K * kPanelCols, dt, N, y, m, std::min(m1, m + kRows), p * kPanelCols);
    }
  }
}

}  // namespace

void PackedRangePortable(const float* x, int64_t K, const void* panels, DType dt, int64_t N, float* y, int64_t m0,
                         int64_t m1, int64_t p0, int64_t p1) {
  switch (dt) {
    case DType::kF32:
      return PortableRange<uint32_t, WidenF32>(x, K, static_cast<const uint32_t*>(panels), dt, N, y, m0, m1, p0, p1);
    case DType::kF16:
      return PortableRange<uint16_t, F16ToF32>(x, K, static_cast<const uint16_t*>(panels), dt, N, y, m0, m1, p0, p1);
    case DType::kBF16:
      return PortableRange<uint16_t, Bf16ToF32>(x, K, static_cast<const uint16_t*>(panels), dt, N, y, m0, m1, p0, p1);
  }
}

void MatmulPackedPortable(const float* x, int64_t M, const PackedMatrix& w, float* y, ThreadPool* pool) {
  MatmulPackedWith(PackedRangePortable, x, M, w, y, pool);
}

void MatmulPackedAvx512(const float* x, int64_t M, const PackedMatrix& w, float* y, ThreadPool* pool) {
  MatmulPackedWith(PackedRangeAvx512, x, M, w, y, pool);
}

}  // namespace internal

void MatmulPacked(const float* x, int64_t M, const PackedMatrix& w, float* y, ThreadPool* pool) {
  if (internal::CpuHasAvx512()) {
    internal::MatmulPackedAvx512(x, M, w, y, pool);
  } else {
    internal::MatmulPackedPortable(x, M, w, y, pool);
  }
}

}  // namespace brickrt::kernels
