// Expert bricks: shape validation at load, attaching loras, and the MLP expert's forward.
#include "bricks/experts.h"

#include "bricks/norm.h"
#include "kernels/cpu/gelu.h"

namespace brickrt {
namespace {
// Expert tensors are [in, out]: y = x·W, no transpose.
kernels::PackedMatrix PackInOut(const Tensor& t) {
  return kernels::PackedMatrix::Pack(t.data(), t.dtype(), t.dim(0), t.dim(1), /*transposed=*/false);
}

// Appends a delta for `lora` to the projection `w` (in = K, out = N) it targets.
Status AppendLora(const kernels::PackedMatrix& w, const BrickData& lora, double scale, LoraDeltas* deltas) {
  BRICK_ASSIGN_OR_RETURN(auto delta, LoraDelta::FromData(lora, w.K(), w.N(), scale));
  deltas->push_back(std::move(delta));
  return Status::Ok();
}

Status NoSuchProjection(const BrickData& lora, const char* kind, const char* names) {
  return InvalidArgument("lora " + lora.Name() + ": " + kind + " has projections " + names);
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

Result<std::shared_ptr<const AttentionExpert>> AttentionExpert::WithLora(const std::string& tensor,
                                                                         const BrickData& lora, double scale) const {
  auto e = std::make_shared<AttentionExpert>(*this);
  if (tensor == "wq") {
    BRICK_RETURN_IF_ERROR(AppendLora(wq_, lora, scale, &e->wq_lora_));
  } else if (tensor == "wo") {
    BRICK_RETURN_IF_ERROR(AppendLora(wo_, lora, scale, &e->wo_lora_));
  } else {
    return NoSuchProjection(lora, "an attention expert", "wq and wo");
  }
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

Result<std::shared_ptr<const MlpExpert>> MlpExpert::WithLora(const std::string& tensor, const BrickData& lora,
                                                             double scale) const {
  auto e = std::make_shared<MlpExpert>(*this);
  if (tensor == "w1") {
    BRICK_RETURN_IF_ERROR(AppendLora(w1_, lora, scale, &e->w1_lora_));
  } else if (tensor == "w2") {
    BRICK_RETURN_IF_ERROR(AppendLora(w2_, lora, scale, &e->w2_lora_));
  } else {
    return NoSuchProjection(lora, "an MLP expert", "w1 and w2");
  }
  return std::shared_ptr<const MlpExpert>(std::move(e));
}

void MlpExpert::Forward(const float* x, int64_t M, float* y, float* scratch, float* lora_scratch,
                        ThreadPool* pool) const {
  kernels::MatmulPacked(x, M, w1_, scratch, pool);
  AddLoras(w1_lora_, x, M, scratch, lora_scratch, pool);  // before the GELU: it acts on x·W1
  kernels::GeluTanh(scratch, M * w1_.N());
  kernels::MatmulPacked(scratch, M, w2_, y, pool);
  AddLoras(w2_lora_, scratch, M, y, lora_scratch, pool);
}

}  // namespace brickrt
