// AVX-512 single-query stick-breaking scan: four key dot products at a time (independent
// accumulators hide FMA latency), masked d tails, vector axpy into the output. Same arithmetic
// order for R and the weights as the portable scan (StickBreakStepAt). Only called after CpuHasAvx512().
#include <immintrin.h>

// GCC 12.2 warns inside its own AVX-512 headers (_mm512_reduce_add_ps passes _mm512_undefined_pd()
// as a merge source; GCC bug 105593, fixed in 12.3).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include "kernels/cpu/avx512_util.h"
#include "kernels/cpu/stickbreak.h"
#include "kernels/cpu/variants.h"

namespace brickrt::kernels::internal {
namespace {

// logits[j - begin] = scale·<q, k_j> for j in [begin, end).
void BlockLogits(const float* q, const float* k, int64_t ldkv, int64_t begin, int64_t end, int64_t d, float scale,
                 float* logits) {
  int64_t j = begin;
  for (; j + 4 <= end; j += 4) {
    const float* k0 = k + j * ldkv;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (int64_t i = 0; i < d; i += 16) {
      const __mmask16 m = TailMask(i, d);
      const __m512 qv = _mm512_maskz_loadu_ps(m, q + i);
      a0 = _mm512_fmadd_ps(qv, _mm512_maskz_loadu_ps(m, k0 + i), a0);
      a1 = _mm512_fmadd_ps(qv, _mm512_maskz_loadu_ps(m, k0 + ldkv + i), a1);
      a2 = _mm512_fmadd_ps(qv, _mm512_maskz_loadu_ps(m, k0 + 2 * ldkv + i), a2);
      a3 = _mm512_fmadd_ps(qv, _mm512_maskz_loadu_ps(m, k0 + 3 * ldkv + i), a3);
    }
    logits[j - begin] = scale * _mm512_reduce_add_ps(a0);
    logits[j + 1 - begin] = scale * _mm512_reduce_add_ps(a1);
    logits[j + 2 - begin] = scale * _mm512_reduce_add_ps(a2);
    logits[j + 3 - begin] = scale * _mm512_reduce_add_ps(a3);
  }
  for (; j < end; ++j) {
    const float* kj = k + j * ldkv;
    __m512 a = _mm512_setzero_ps();
    for (int64_t i = 0; i < d; i += 16) {
      const __mmask16 m = TailMask(i, d);
      a = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, q + i), _mm512_maskz_loadu_ps(m, kj + i), a);
    }
    logits[j - begin] = scale * _mm512_reduce_add_ps(a);
  }
}

}  // namespace

void StickBreakQueryAvx512(const float* q, const float* k, const float* v, int64_t ldkv, int64_t n_keys, int64_t d,
                           float scale, float* out, float* logits) {
  for (int64_t i = 0; i < d; i += 16) _mm512_mask_storeu_ps(out + i, TailMask(i, d), _mm512_setzero_ps());
  float r = 0;  // log of the stick left by the newer keys (F32 is enough, G6)
  for (int64_t end = n_keys; end > 0; end -= kStickBreakBlock) {
    const int64_t begin = end > kStickBreakBlock ? end - kStickBreakBlock : 0;
    BlockLogits(q, k, ldkv, begin, end, d, scale, logits);
    for (int64_t j = end - 1; j >= begin; --j) {
      const StickBreakStep s = StickBreakStepAt(logits[j - begin], r);
      if (s.a != 0.0f) {
        const float* vj = v + j * ldkv;
        const __m512 av = _mm512_set1_ps(s.a);
        for (int64_t i = 0; i < d; i += 16) {
          const __mmask16 m = TailMask(i, d);
          _mm512_mask_storeu_ps(out + i, m,
                                _mm512_fmadd_ps(av, _mm512_maskz_loadu_ps(m, vj + i), _mm512_maskz_loadu_ps(m, out + i)));
        }
      }
      r = s.r_next;
      if (r < kStickBreakStopLog) return;  // every older weight is exactly 0 in F32
    }
  }
}

}  // namespace brickrt::kernels::internal
