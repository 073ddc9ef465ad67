// Emulated stickbreak.h: each query runs the CPU's portable decode scan (kernels/cpu/variants.h), which
// is what the kernel reproduces: blocks of 32 keys newest first, StickBreakStepAt in F32, the exact
// stop after the key at which the log-remainder drops below −104, zero weights skipped.
#include <string>

#include "kernels/cpu/variants.h"
#include "kernels/cuda/stickbreak.h"
#include "kernels/cuda_emul/shadow.h"

namespace brickrt::cuda {
namespace {

// One query over keys 0..n_keys-1 of k, v (device pointers, row stride ldkv); q, out device [d].
Status Query(const std::string& what, const float* q, const float* k, const float* v, int64_t ldkv, int64_t n_keys,
             int64_t d, float scale, float* out) {
  const size_t kv = emul::Span(n_keys, ldkv, d), dn = static_cast<size_t>(d);
  BRICK_ASSIGN_OR_RETURN(const float* qs, emul::Shadow(q, dn, what + ": q"));
  BRICK_ASSIGN_OR_RETURN(const float* ks, emul::Shadow(k, kv, what + ": k"));
  BRICK_ASSIGN_OR_RETURN(const float* vs, emul::Shadow(v, kv, what + ": v"));
  BRICK_ASSIGN_OR_RETURN(float* os, emul::Shadow(out, dn, what + ": out"));
  float logits[kernels::internal::kStickBreakBlock];
  kernels::internal::StickBreakQueryPortable(qs, ks, vs, ldkv, n_keys, d, scale, os, logits);
  return Status::Ok();
}

}  // namespace

Status StickBreakDecodeCuda(const float* q, const float* k, const float* v, int64_t ldkv, int64_t n_keys, int64_t d,
                            float scale, float* out, CudaStream stream) {
  if (d == 0) return Status::Ok();
  BRICK_RETURN_IF_ERROR(emul::CheckStream(stream, "StickBreakDecodeCuda"));
  return Query("StickBreakDecodeCuda", q, k, v, ldkv, n_keys, d, scale, out);
}

Status StickBreakPrefillCuda(const float* q, int64_t ldq, int64_t n, const int64_t* positions, const float* k,
                             const float* v, int64_t ldkv, int64_t d, float scale, float* out, int64_t ldo,
                             CudaStream stream) {
  if (n == 0 || d == 0) return Status::Ok();
  BRICK_RETURN_IF_ERROR(emul::CheckStream(stream, "StickBreakPrefillCuda"));
  BRICK_ASSIGN_OR_RETURN(const int64_t* pos,
                         emul::Shadow(positions, static_cast<size_t>(n), "StickBreakPrefillCuda: positions"));
  for (int64_t r = 0; r < n; ++r) {
    BRICK_RETURN_IF_ERROR(Query("StickBreakPrefillCuda: query " + std::to_string(r), q + r * ldq, k, v, ldkv,
                                pos[r] + 1, d, scale, out + r * ldo));
  }
  return Status::Ok();
}

Status StickBreakPairsCuda(const float* q, int64_t ldq, int64_t P, const int32_t* rows, const int64_t* positions,
                           const float* const* kv_of_row, int64_t ldkv, int64_t d, float scale, float* out, int64_t ldo,
                           CudaStream stream) {
  if (P == 0 || d == 0) return Status::Ok();
  BRICK_RETURN_IF_ERROR(emul::CheckStream(stream, "StickBreakPairsCuda"));
  BRICK_ASSIGN_OR_RETURN(const int32_t* rw, emul::Shadow(rows, static_cast<size_t>(P), "StickBreakPairsCuda: rows"));
  for (int64_t p = 0; p < P; ++p) {
    // positions and kv_of_row have one entry per token row, a count the call does not carry: each
    // element read is checked on its own.
    const std::string what = "StickBreakPairsCuda: pair " + std::to_string(p) + " (row " + std::to_string(rw[p]) + ")";
    BRICK_ASSIGN_OR_RETURN(const int64_t* pos, emul::Shadow(positions + rw[p], 1, what + ": positions[row]"));
    BRICK_ASSIGN_OR_RETURN(const float* const* kv, emul::Shadow(kv_of_row + rw[p], 1, what + ": kv_of_row[row]"));
    BRICK_RETURN_IF_ERROR(Query(what, q + p * ldq, *kv, *kv, ldkv, *pos + 1, d, scale, out + p * ldo));
  }
  return Status::Ok();
}

}  // namespace brickrt::cuda
