// Router forward: two small GEMMs around an erf GELU, then softmax + top-k.
#include "bricks/router.h"

#include "bricks/norm.h"
#include "kernels/cpu/gelu.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/softmax_topk.h"

namespace brickrt {

Result<Router> Router::FromData(const BrickData& brick, int64_t d_model, int64_t gating_size, int64_t n_experts) {
  BRICK_RETURN_IF_ERROR(ExpectTensor(brick, "w1", {gating_size, d_model}));
  BRICK_RETURN_IF_ERROR(ExpectTensor(brick, "b1", {gating_size}));
  BRICK_RETURN_IF_ERROR(ExpectTensor(brick, "w2", {n_experts, gating_size}));
  Router r;
  r.w1_ = brick.Find("w1")->Transposed2D();
  r.b1_ = brick.Find("b1")->ConvertTo(DType::kF32);
  r.w2_ = brick.Find("w2")->Transposed2D();
  return r;
}

void Router::Route(const float* x, int64_t M, int k, float* gates, int32_t* ids, float* scratch,
                   ThreadPool* pool) const {
  const int64_t D = w1_.dim(0), G = w1_.dim(1), E = w2_.dim(1);
  float* hidden = scratch;       // [M, G]
  float* logits = scratch + M * G;  // [M, E]
  kernels::Matmul(x, M, D, w1_.data(), w1_.dtype(), G, hidden, pool);
  const float* b = b1_.data_as<float>();
  for (int64_t m = 0; m < M; ++m)
    for (int64_t g = 0; g < G; ++g) hidden[m * G + g] += b[g];
  kernels::GeluErf(hidden, M * G);
  kernels::Matmul(hidden, M, G, w2_.data(), w2_.dtype(), E, logits, pool);
  kernels::SoftmaxTopK(logits, M, E, k, gates, ids);
}

}  // namespace brickrt
