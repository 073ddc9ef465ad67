// Emulated layernorm.h: the kernel's formula (two F32 passes: mean, then squared deviations; biased
// variance; 1/√(var + eps)), weights and bias read in their storage dtype and widened exactly.
#include <cmath>
#include <vector>

#include "core/dtype.h"
#include "kernels/cuda/layernorm.h"
#include "kernels/cuda_emul/shadow.h"

namespace brickrt::cuda {

Status LayerNormCuda(const float* x, int64_t M, int64_t D, const void* w, const void* b, DType wt, float eps, float* y,
                     CudaStream stream) {
  if (M == 0 || D == 0) return Status::Ok();
  BRICK_RETURN_IF_ERROR(emul::CheckStream(stream, "LayerNormCuda"));
  const size_t n = static_cast<size_t>(M * D), wbytes = static_cast<size_t>(D) * DTypeSize(wt);
  BRICK_ASSIGN_OR_RETURN(const float* xs, emul::Shadow(x, n, "LayerNormCuda: x"));
  BRICK_ASSIGN_OR_RETURN(const void* ws, emul::ShadowBytes(w, wbytes, "LayerNormCuda: w"));
  BRICK_ASSIGN_OR_RETURN(const void* bs, emul::ShadowBytes(b, wbytes, "LayerNormCuda: b"));
  BRICK_ASSIGN_OR_RETURN(float* ys, emul::Shadow(y, n, "LayerNormCuda: y"));
  std::vector<float> wf(static_cast<size_t>(D)), bf(static_cast<size_t>(D));
  ConvertToF32(ws, wt, wf.size(), wf.data());
  ConvertToF32(bs, wt, bf.size(), bf.data());
  for (int64_t m = 0; m < M; ++m) {
    const float* xr = xs + m * D;
    float* yr = ys + m * D;  // may alias xr: both sums are taken before any write
    float s = 0;
    for (int64_t i = 0; i < D; ++i) s += xr[i];
    const float mean = s / static_cast<float>(D);
    float ss = 0;
    for (int64_t i = 0; i < D; ++i) ss += (xr[i] - mean) * (xr[i] - mean);
    const float var = ss / static_cast<float>(D);
    const float inv = 1.0f / std::sqrt(var + eps);
    for (int64_t i = 0; i < D; ++i) yr[i] = (xr[i] - mean) * inv * wf[i] + bf[i];
  }
  return Status::Ok();
}

}  // namespace brickrt::cuda
