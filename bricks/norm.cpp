// Norm brick: validation at load, then the LayerNorm kernel.
#include "bricks/norm.h"

#include "kernels/cpu/layernorm.h"

namespace brickrt {

Status ExpectTensor(const BrickData& brick, const char* name, const Shape& shape) {
  const Tensor* t = brick.Find(name);
  if (t == nullptr) return NotFound("brick " + brick.Name() + ": missing tensor '" + name + "'");
  if (t->shape() != shape) {
    return InvalidArgument("brick " + brick.Name() + ": tensor '" + name + "': expected shape " + ShapeToString(shape) +
                           ", found " + ShapeToString(t->shape()));
  }
  return Status::Ok();
}

Result<Norm> Norm::FromData(const BrickData& brick, int64_t d_model, float eps) {
  BRICK_RETURN_IF_ERROR(ExpectTensor(brick, "weight", {d_model}));
  BRICK_RETURN_IF_ERROR(ExpectTensor(brick, "bias", {d_model}));
  Norm n;
  n.weight_ = brick.Find("weight")->ConvertTo(DType::kF32);
  n.bias_ = brick.Find("bias")->ConvertTo(DType::kF32);
  n.eps_ = eps;
  return n;
}

void Norm::Apply(const float* x, int64_t M, float* y) const {
  kernels::LayerNorm(x, M, weight_.dim(0), weight_.data_as<float>(), bias_.data_as<float>(), eps_, y);
}

}  // namespace brickrt
