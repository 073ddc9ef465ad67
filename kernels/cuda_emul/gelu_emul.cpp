// Emulated gelu.h: the kernels use the portable CPU formulas verbatim (erf form and the
// x / (1 + exp(−2u)) tanh form), so the emulation runs those loops on the shadow.
#include <string>

#include "kernels/cpu/variants.h"
#include "kernels/cuda/gelu.h"
#include "kernels/cuda_emul/shadow.h"

namespace brickrt::cuda {
namespace {

Status Gelu(const char* op, void (*fn)(float*, int64_t), float* x, int64_t n, CudaStream stream) {
  if (n == 0) return Status::Ok();
  BRICK_RETURN_IF_ERROR(emul::CheckStream(stream, op));
  BRICK_ASSIGN_OR_RETURN(float* xs, emul::Shadow(x, static_cast<size_t>(n), std::string(op) + ": x"));
  fn(xs, n);
  return Status::Ok();
}

}  // namespace

Status GeluErfCuda(float* x, int64_t n, CudaStream stream) {
  return Gelu("GeluErfCuda", kernels::internal::GeluErfPortable, x, n, stream);
}

Status GeluTanhCuda(float* x, int64_t n, CudaStream stream) {
  return Gelu("GeluTanhCuda", kernels::internal::GeluTanhPortable, x, n, stream);
}

}  // namespace brickrt::cuda
