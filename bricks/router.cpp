// Router forward: two small GEMMs around an erf GELU, then softmax + top-k.
#include "bricks/router.h"

#include <cstring>
#include <limits>

#include "bricks/norm.h"
#include "kernels/cpu/gelu.h"
#include "kernels/cpu/softmax_topk.h"

namespace brickrt {

Result<Router> Router::FromData(const BrickData& brick, int64_t d_model, int64_t gating_size, int64_t n_experts,
                                const std::vector<int64_t>& kept) {
  BRICK_RETURN_IF_ERROR(ExpectTensor(brick, "w1", {gating_size, d_model}));
  BRICK_RETURN_IF_ERROR(ExpectTensor(brick, "b1", {gating_size}));
  BRICK_RETURN_IF_ERROR(ExpectTensor(brick, "w2", {n_experts, gating_size}));
  for (size_t i = 0; i < kept.size(); ++i) {
    if (kept[i] < 0 || kept[i] >= n_experts || (i > 0 && kept[i] <= kept[i - 1]))
      return InvalidArgument("router " + brick.Name() + ": kept expert ids must be ascending and below " +
                             std::to_string(n_experts));
  }
  Router r;
  const Tensor& w1 = *brick.Find("w1");
  const Tensor& w2 = *brick.Find("w2");
  r.w1_ = kernels::PackedMatrix::Pack(w1.data(), w1.dtype(), d_model, gating_size, /*transposed=*/true);
  r.b1_ = brick.Find("b1")->ConvertTo(DType::kF32);
  if (kept.empty() || static_cast<int64_t>(kept.size()) == n_experts) {
    r.w2_ = kernels::PackedMatrix::Pack(w2.data(), w2.dtype(), gating_size, n_experts, /*transposed=*/true);
    return r;
  }
  // w2 is [E, G] row-major: the kept experts' rows are contiguous runs of G elements.
  const int64_t n_kept = static_cast<int64_t>(kept.size());
  Tensor rows = Tensor::Uninitialized(w2.dtype(), {n_kept, gating_size});
  const size_t row_bytes = static_cast<size_t>(gating_size) * DTypeSize(w2.dtype());
  for (int64_t i = 0; i < n_kept; ++i) {
    std::memcpy(static_cast<uint8_t*>(rows.mutable_data()) + static_cast<size_t>(i) * row_bytes,
                static_cast<const uint8_t*>(w2.data()) + static_cast<size_t>(kept[static_cast<size_t>(i)]) * row_bytes,
                row_bytes);
  }
  r.w2_ = kernels::PackedMatrix::Pack(rows.data(), rows.dtype(), gating_size, n_kept, /*transposed=*/true);
  return r;
}

void Router::Route(const float* x, int64_t M, int k, float* gates, int32_t* ids, float* scratch, ThreadPool* pool,
                   const uint8_t* skip) const {
  const int64_t G = w1_.N(), E = w2_.N();
  float* hidden = scratch;          // [M, G]
  float* logits = scratch + M * G;  // [M, E]
  kernels::MatmulPacked(x, M, w1_, hidden, pool);
  const float* b = b1_.data_as<float>();
  for (int64_t m = 0; m < M; ++m)
    for (int64_t g = 0; g < G; ++g) hidden[m * G + g] += b[g];
  kernels::GeluErf(hidden, M * G);
  kernels::MatmulPacked(hidden, M, w2_, logits, pool);
  if (skip != nullptr) {
    for (int64_t e = 0; e < E; ++e) {
      if (skip[e] == 0) continue;
      for (int64_t m = 0; m < M; ++m) logits[m * E + e] = -std::numeric_limits<float>::infinity();
    }
  }
  kernels::SoftmaxTopK(logits, M, E, k, gates, ids);
}

}  // namespace brickrt
