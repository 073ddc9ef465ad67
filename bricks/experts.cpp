// Expert bricks: shape validation at load and the MLP expert's forward.
#include "bricks/experts.h"

#include "bricks/norm.h"
#include "kernels/cpu/gelu.h"

namespace brickrt {
namespace {
// Expert tensors are [in, out]: y = x·W, no transpose.
kernels::PackedMatrix PackInOut(const Tensor& t) {
  return kernels::PackedMatrix::Pack(t.data(), t.dtype(), t.dim(0), t.dim(1), /*transposed=*/false);
}
}  // namespace

Result<std::shared_ptr<const AttentionExpert>> AttentionExpert::FromData(const BrickData& brick,
                                                                         const ModelConfig& cfg) {
  BRICK_RETURN_IF_ERROR(ExpectTensor(brick, "wq", {cfg.n_embd, cfg.att_hidden}));
  BRICK_RETURN_IF_ERROR(ExpectTensor(brick, "wo", {cfg.att_hidden, cfg.n_embd}));
  auto e = std::make_shared<AttentionExpert>();
  e->wq_ = PackInOut(*brick.Find("wq"));
  e->wo_ = PackInOut(*brick.Find("wo"));
  return std::shared_ptr<const AttentionExpert>(std::move(e));
}

Result<std::shared_ptr<const MlpExpert>> MlpExpert::FromData(const BrickData& brick, const ModelConfig& cfg) {
  BRICK_RETURN_IF_ERROR(ExpectTensor(brick, "w1", {cfg.n_embd, cfg.ffd_hidden}));
  BRICK_RETURN_IF_ERROR(ExpectTensor(brick, "w2", {cfg.ffd_hidden, cfg.n_embd}));
  auto e = std::make_shared<MlpExpert>();
  e->w1_ = PackInOut(*brick.Find("w1"));
  e->w2_ = PackInOut(*brick.Find("w2"));
  return std::shared_ptr<const MlpExpert>(std::move(e));
}

void MlpExpert::Forward(const float* x, int64_t M, float* y, float* scratch, ThreadPool* pool) const {
  kernels::MatmulPacked(x, M, w1_, scratch, pool);
  kernels::GeluTanh(scratch, M * w1_.N());
  kernels::MatmulPacked(scratch, M, w2_, y, pool);
}

}  // namespace brickrt
