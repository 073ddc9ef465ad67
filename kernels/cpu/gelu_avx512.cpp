// AVX-512 GELU: a vectorized exp (Cephes-style, ~1 ulp) used for the tanh form via x·σ(2u), and the
// Abramowitz–Stegun 7.1.26 erf (|error| < 1.5e-7) for the erf form. Only called after CpuHasAvx512().
#include <immintrin.h>

// GCC 12.2 warns inside its own AVX-512 headers (the unmasked min/max/scalef/roundscale intrinsics
// pass _mm512_undefined_ps() as the merge source; GCC bug 105593, fixed in 12.3). This file has no
// other uninitialized-variable risk worth the noise.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include "kernels/cpu/variants.h"

namespace brickrt::kernels::internal {
namespace {

// e^x for x in [-87.3, 88.7] (clamped outside): x = n·ln2 + r, |r| <= ln2/2, e^r by a degree-6
// polynomial, then scaled by 2^n with vscalefps (no exponent bit tricks, no overflow at the ends).
inline __m512 Exp(__m512 x) {
  x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.3f)), _mm512_set1_ps(88.7f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);  // ln2 split hi/lo (Cephes)
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  return _mm512_scalef_ps(p, n);
}

inline __m512 GeluTanhVec(__m512 v) {
  const __m512 v3 = _mm512_mul_ps(_mm512_mul_ps(v, v), v);
  const __m512 u = _mm512_mul_ps(_mm512_set1_ps(0.7978845608028654f), _mm512_fmadd_ps(_mm512_set1_ps(0.044715f), v3, v));
  const __m512 e = Exp(_mm512_mul_ps(_mm512_set1_ps(-2.0f), u));
  return _mm512_div_ps(v, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
}

// 0.5·v·(1 + erf(v/√2)) with erf(z) = sign(z)·(1 − poly(t)·e^(−z²)), t = 1/(1 + p·|z|).
inline __m512 GeluErfVec(__m512 v) {
  const __m512 z = _mm512_mul_ps(v, _mm512_set1_ps(0.70710678118654752f));
  const __m512 az = _mm512_abs_ps(z);
  const __m512 t = _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_fmadd_ps(_mm512_set1_ps(0.3275911f), az, _mm512_set1_ps(1.0f)));
  __m512 p = _mm512_set1_ps(1.061405429f);
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.453152027f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.421413741f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-0.284496736f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.254829592f));
  p = _mm512_mul_ps(p, t);
  const __m512 e = Exp(_mm512_mul_ps(_mm512_mul_ps(az, az), _mm512_set1_ps(-1.0f)));
  __m512 erf_abs = _mm512_fnmadd_ps(p, e, _mm512_set1_ps(1.0f));
  // erf(z) = sign(z)·erf(|z|): copy the sign bit of z.
  const __m512 erf = _mm512_or_ps(erf_abs, _mm512_and_ps(z, _mm512_set1_ps(-0.0f)));
  return _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), v), _mm512_add_ps(_mm512_set1_ps(1.0f), erf));
}

template <__m512 (*F)(__m512)>
void Apply(float* x, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(x + i, F(_mm512_loadu_ps(x + i)));
  if (i < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1u);
    _mm512_mask_storeu_ps(x + i, m, F(_mm512_maskz_loadu_ps(m, x + i)));
  }
}

}  // namespace

void GeluErfAvx512(float* x, int64_t n) { Apply<GeluErfVec>(x, n); }
void GeluTanhAvx512(float* x, int64_t n) { Apply<GeluTanhVec>(x, n); }

}  // namespace brickrt::kernels::internal
