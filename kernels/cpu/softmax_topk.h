// Router selection: softmax over all E experts, then the k largest probabilities in descending
// order; ties go to the lower expert index. Gates are not renormalised (spec §2.3, G3).
#pragma once

#include <cstdint>

namespace brickrt::kernels {

// logits F32 [M, E] -> gates F32 [M, k], ids int32 [M, k]. REQUIRES: 1 <= k <= E.
// Ids are always k distinct experts in [0, E): the ranking is a total order on the logits, larger
// first, NaN below −inf, equal logits (and NaNs) to the lower index. A row with a NaN or +inf logit,
// or all −inf, gets NaN gates (its softmax is undefined); other rows are unaffected.
void SoftmaxTopKRef(const float* logits, int64_t M, int64_t E, int k, float* gates, int32_t* ids);
void SoftmaxTopK(const float* logits, int64_t M, int64_t E, int k, float* gates, int32_t* ids);

}  // namespace brickrt::kernels
