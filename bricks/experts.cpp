// Expert bricks: shape validation at load and the MLP expert's forward.
#include "bricks/experts.h"

#include "bricks/norm.h"
#include "kernels/cpu/gelu.h"
#include "kernels/cpu/matmul.h"

namespace brickrt {

Result<std::shared_ptr<const AttentionExpert>> AttentionExpert::FromData(const BrickData& brick,
                                                                         const ModelConfig& cfg) {
  BRICK_RETURN_IF_ERROR(ExpectTensor(brick, "wq", {cfg.n_embd, cfg.att_hidden}));
  BRICK_RETURN_IF_ERROR(ExpectTensor(brick, "wo", {cfg.att_hidden, cfg.n_embd}));
  auto e = std::make_shared<AttentionExpert>();
  e->wq_ = *brick.Find("wq");
  e->wo_ = *brick.Find("wo");
  return std::shared_ptr<const AttentionExpert>(std::move(e));
}

Result<std::shared_ptr<const MlpExpert>> MlpExpert::FromData(const BrickData& brick, const ModelConfig& cfg) {
  BRICK_RETURN_IF_ERROR(ExpectTensor(brick, "w1", {cfg.n_embd, cfg.ffd_hidden}));
  BRICK_RETURN_IF_ERROR(ExpectTensor(brick, "w2", {cfg.ffd_hidden, cfg.n_embd}));
  auto e = std::make_shared<MlpExpert>();
  e->w1_ = *brick.Find("w1");
  e->w2_ = *brick.Find("w2");
  return std::shared_ptr<const MlpExpert>(std::move(e));
}

void MlpExpert::Forward(const float* x, int64_t M, float* y, float* scratch, ThreadPool* pool) const {
  const int64_t D = w1_.dim(0), F = w1_.dim(1);
  kernels::Matmul(x, M, D, w1_.data(), w1_.dtype(), F, scratch, pool);
  kernels::GeluTanh(scratch, M * F);
  kernels::Matmul(scratch, M, F, w2_.data(), w2_.dtype(), D, y, pool);
}

}  // namespace brickrt
