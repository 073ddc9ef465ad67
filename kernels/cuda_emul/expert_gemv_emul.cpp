// Emulated expert_gemv.h: each pair's expert found from the device offsets by the kernel's own binary
// search (internal::ExpertOfPair), weights widened exactly, F32 accumulation with k ascending (the
// kernel adds split-K partial sums in split order: the same values up to summation order), with the
// .cu's checks. The offsets, the device array of weight pointers, every weight matrix, x and y row and
// the scratch are translated through the registry, so a host pointer anywhere among them is refused,
// as on a GPU it would fault.
#include <algorithm>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "kernels/cuda/expert_gemv.h"
#include "kernels/cuda_emul/shadow.h"

namespace brickrt::cuda {
Status ExpertGemvCuda(const float* x, int64_t ldx, int64_t P, int64_t K, const int32_t* offsets, int64_t E,
                      const void* const* weights, DType wt, int64_t N, float* y, int64_t ldy, void* scratch,
                      CudaStream stream) {
  const size_t scratch_bytes = ExpertGemvScratchBytes(P, N);
  BRICK_RETURN_IF_ERROR(internal::CheckExpertGemv(ldx, P, K, E, wt, N, ldy, scratch, scratch_bytes));
  if (P == 0 || N == 0) return Status::Ok();
  BRICK_RETURN_IF_ERROR(emul::CheckStream(stream, "ExpertGemvCuda"));
  if (scratch_bytes > 0) {
    BRICK_RETURN_IF_ERROR(
        emul::ShadowBytes(scratch, scratch_bytes, "ExpertGemvCuda: scratch of ExpertGemvScratchBytes(P, N)").status());
  }
  BRICK_ASSIGN_OR_RETURN(const int32_t* off,
                         emul::Shadow(offsets, static_cast<size_t>(E + 1), "ExpertGemvCuda: offsets"));
  BRICK_ASSIGN_OR_RETURN(
      const void* const* ws,
      emul::Shadow(weights, static_cast<size_t>(E), "ExpertGemvCuda: weights (the device array of device pointers)"));
  const size_t es = DTypeSize(wt);
  std::vector<float> row(static_cast<size_t>(N)), acc(static_cast<size_t>(N));
  for (int64_t p = 0; p < P; ++p) {
    const int64_t e = internal::ExpertOfPair(off, E, p);
    if (e < 0 || ws[e] == nullptr) continue;  // not this GPU's expert (or no expert): y untouched
    const std::string which = "ExpertGemvCuda: pair " + std::to_string(p) + " (expert " + std::to_string(e) + ")";
    BRICK_ASSIGN_OR_RETURN(const float* xr, emul::Shadow(x + p * ldx, static_cast<size_t>(K), which + ": x row"));
    BRICK_ASSIGN_OR_RETURN(
        const void* w, emul::ShadowBytes(ws[e], static_cast<size_t>(K * N) * es, which + ": weights[expert] [K, N]"));
    BRICK_ASSIGN_OR_RETURN(float* yr, emul::Shadow(y + p * ldy, static_cast<size_t>(N), which + ": y row"));
    std::fill(acc.begin(), acc.end(), 0.0f);
    const auto* wb = static_cast<const char*>(w);
    for (int64_t k = 0; k < K; ++k) {
      ConvertToF32(wb + static_cast<size_t>(k * N) * es, wt, row.size(), row.data());  // exact widening
      const float a = xr[k];
      for (int64_t n = 0; n < N; ++n) acc[static_cast<size_t>(n)] += a * row[static_cast<size_t>(n)];
    }
    std::copy(acc.begin(), acc.end(), yr);
  }
  return Status::Ok();
}

}  // namespace brickrt::cuda
