// LoRA deltas: validation, the on-the-fly delta (two thin products) and the merge.
#include "bricks/lora.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/dtype.h"
#include "core/tensor.h"

namespace brickrt {
namespace {

// Below this many bytes of B a parallel loop costs more than it saves (a wake-up is ~1-2 µs).
constexpr int64_t kMinParallelBytes = 256 * 1024;

// The lora's rank after checking its tensors against the projection (core/lora_target.h) and scale finite.
Result<int64_t> CheckLora(const BrickData& lora, int64_t in, int64_t out, double scale) {
  BRICK_ASSIGN_OR_RETURN(const int64_t r, CheckLoraTensors(lora, in, out));
  if (!std::isfinite(scale)) return InvalidArgument("lora " + lora.Name() + ": scale is not finite");
  return r;
}

std::vector<double> ToDouble(const Tensor& t) {
  std::vector<float> f(static_cast<size_t>(t.numel()));
  ConvertToF32(t.data(), t.dtype(), f.size(), f.data());
  return {f.begin(), f.end()};
}

// Rounds v to float so that a second round-to-nearest to BF16/F16 gives the correctly rounded value
// of v itself: round to odd (truncate, then set the last bit when inexact) keeps the sticky
// information a double rounding would lose (float has >= 2 more bits than BF16 or F16).
float RoundToOddF32(double v) {
  float f = static_cast<float>(v);
  if (static_cast<double>(f) == v || !std::isfinite(f)) return f;
  if (std::fabs(static_cast<double>(f)) > std::fabs(v)) f = std::nextafter(f, 0.0f);  // truncate
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  bits |= 1u;
  std::memcpy(&f, &bits, 4);
  return f;
}

void StoreRounded(const std::vector<double>& src, DType dt, void* dst) {
  const size_t n = src.size();
  if (dt == DType::kF32) {
    float* d = static_cast<float*>(dst);
    for (size_t i = 0; i < n; ++i) d[i] = static_cast<float>(src[i]);
    return;
  }
  std::vector<float> odd(n);
  for (size_t i = 0; i < n; ++i) odd[i] = RoundToOddF32(src[i]);
  ConvertFromF32(odd.data(), n, dt, dst);
}

}  // namespace

Result<std::shared_ptr<const LoraDelta>> LoraDelta::FromData(const BrickData& lora, int64_t in, int64_t out,
                                                             double scale) {
  if (lora.kind != BrickKind::kLora)
    return InvalidArgument("brick " + lora.Name() + " (" + BrickKindName(lora.kind) + ") is not a lora");
  BRICK_ASSIGN_OR_RETURN(const int64_t r, CheckLora(lora, in, out, scale));
  auto d = std::make_shared<LoraDelta>();
  const Tensor& a = *lora.Find("a");
  d->a_ = kernels::PackedMatrix::Pack(a.data(), a.dtype(), in, r, /*transposed=*/true);
  // B is widened to F32 so AddTo can accumulate straight from its panels (MatmulPacked overwrites its
  // output, and a temporary [M, out] would be as large as the logits for the lm head).
  const Tensor b = lora.Find("b")->ConvertTo(DType::kF32);
  d->b_ = kernels::PackedMatrix::Pack(b.data(), DType::kF32, r, out, /*transposed=*/true);
  d->multiplier_ = static_cast<float>(scale * LoraAlpha(lora) / static_cast<double>(r));
  return std::shared_ptr<const LoraDelta>(std::move(d));
}

void LoraDelta::AddTo(const float* x, int64_t M, float* y, float* scratch, ThreadPool* pool) const {
  const int64_t r = rank(), N = out();
  kernels::MatmulPacked(x, M, a_, scratch, pool);  // scratch [M, r] = x·Aᵀ
  for (int64_t i = 0; i < M * r; ++i) scratch[i] *= multiplier_;
  const float* panels = static_cast<const float*>(b_.data());
  // y[:, panels p0..p1) += scratch · Bᵀ: panel p holds Bᵀ[0:r, 64p : 64p+64] as r rows of 64 floats.
  auto run = [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const float* panel = panels + p * r * kernels::kPanelCols;
      const int64_t n0 = p * kernels::kPanelCols, cols = std::min(kernels::kPanelCols, N - n0);
      for (int64_t m = 0; m < M; ++m) {
        float* yr = y + m * N + n0;
        const float* t = scratch + m * r;
        for (int64_t k = 0; k < r; ++k) {
          const float c = t[k];
          const float* w = panel + k * kernels::kPanelCols;
          if (cols == kernels::kPanelCols) {
            for (int64_t j = 0; j < kernels::kPanelCols; ++j) yr[j] += c * w[j];  // fixed trip count: vectorized
          } else {
            for (int64_t j = 0; j < cols; ++j) yr[j] += c * w[j];
          }
        }
      }
    }
  };
  const int64_t n_panels = b_.panels();
  const int threads = pool != nullptr ? pool->size() : 1;
  if (threads <= 1 || n_panels < 2 || static_cast<int64_t>(b_.bytes()) < kMinParallelBytes) {
    run(0, n_panels);
    return;
  }
  // Disjoint column ranges: no two tasks write the same element of y.
  const int64_t tasks = std::min<int64_t>(threads, n_panels);
  pool->ParallelFor(tasks, [&](int64_t task, int) { run(n_panels * task / tasks, n_panels * (task + 1) / tasks); });
}

int64_t MaxLoraRank(const LoraDeltas& deltas) {
  int64_t r = 0;
  for (const auto& d : deltas) r = std::max(r, d->rank());
  return r;
}

int64_t LoraBytes(const LoraDeltas& deltas) {
  int64_t n = 0;
  for (const auto& d : deltas) n += d->bytes();
  return n;
}

namespace {
Status TiedHeadError(const BrickData& lora) {
  return InvalidArgument("lora " + lora.target +
                         ": the lm head is tied to the embedding, so merging would change the token embeddings too; "
                         "attach this lora on the fly (merge: false) instead");
}
}  // namespace

Status CheckMergeable(const BrickData& lora, const ModelConfig& cfg) {
  BRICK_ASSIGN_OR_RETURN(const LoraTarget t, LoraTargetOf(lora));
  if (t.kind == BrickKind::kLmHead && cfg.tie_word_embeddings) return TiedHeadError(lora);
  return Status::Ok();
}

Result<BrickData> MergeLora(const BrickData& target, const BrickData& lora, double scale) {
  BRICK_ASSIGN_OR_RETURN(const LoraTarget t, LoraTargetOf(lora));
  if (t.kind == BrickKind::kLmHead && target.kind == BrickKind::kEmbedding) return TiedHeadError(lora);
  const std::string projection = target.Name() + "." + t.tensor;
  if (target.kind != t.kind || projection != lora.target) {
    return InvalidArgument("lora " + lora.target + " cannot be merged into brick " + target.Name() + " (" +
                           BrickKindName(target.kind) + "): it targets another brick");
  }
  const Tensor* w = target.Find(t.tensor);
  if (w == nullptr || w->rank() != 2)
    return InvalidArgument("brick " + target.Name() + ": no 2-D tensor '" + t.tensor + "' to merge lora into");
  const bool in_out = LoraBaseStoredInOut(t.proj());
  const int64_t in = in_out ? w->dim(0) : w->dim(1), out = in_out ? w->dim(1) : w->dim(0);
  BRICK_ASSIGN_OR_RETURN(const int64_t r, CheckLora(lora, in, out, scale));
  const std::vector<double> a = ToDouble(*lora.Find("a"));  // [r, in]
  const std::vector<double> b = ToDouble(*lora.Find("b"));  // [out, r]
  const double mult = scale * LoraAlpha(lora) / static_cast<double>(r);
  // Row by row of W's storage (rows × cols), so the extra memory is a row, not a double copy of W
  // (an lm head is ~50M elements). Row s of ΔW in W's orientation is Σ_k c_k(s) · M[k, 0:cols]:
  // experts (ΔWᵀ, rows = in): M = Bᵀ [r, out], c_k(s) = A[k, s]; the head (rows = out): M = A,
  // c_k(s) = B[s, k].
  const auto R = static_cast<size_t>(r), rows = static_cast<size_t>(w->dim(0)), cols = static_cast<size_t>(w->dim(1));
  std::vector<double> m = a;
  if (in_out) {
    m.assign(R * cols, 0.0);
    for (size_t o = 0; o < cols; ++o)
      for (size_t k = 0; k < R; ++k) m[k * cols + o] = b[o * R + k];
  }
  const DType dt = w->dtype();
  const size_t es = DTypeSize(dt);
  Tensor result = Tensor::Uninitialized(dt, w->shape());
  std::vector<float> w_row(cols);
  std::vector<double> row(cols);
  for (size_t s = 0; s < rows; ++s) {
    ConvertToF32(static_cast<const uint8_t*>(w->data()) + s * cols * es, dt, cols, w_row.data());
    std::fill(row.begin(), row.end(), 0.0);
    for (size_t k = 0; k < R; ++k) {
      const double c = in_out ? a[k * rows + s] : b[s * R + k];
      const double* mk = m.data() + k * cols;
      for (size_t j = 0; j < cols; ++j) row[j] += c * mk[j];
    }
    for (size_t j = 0; j < cols; ++j) row[j] = w_row[j] + mult * row[j];
    StoreRounded(row, dt, static_cast<uint8_t*>(result.mutable_data()) + s * cols * es);
  }
  BrickData out_brick = target;  // tensors share storage; only the merged one is replaced
  for (auto& [name, tensor] : out_brick.tensors) {
    if (name == t.tensor) tensor = std::move(result);
  }
  return out_brick;
}

}  // namespace brickrt
