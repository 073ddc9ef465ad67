// Embedding brick (wte): token ids -> F32 rows. No position embedding exists in ModuleFormer.
#pragma once

#include <cstdint>

#include "core/brick_data.h"
#include "core/status.h"
#include "core/tensor.h"

namespace brickrt {

class Embedding {
 public:
  static Result<Embedding> FromData(const BrickData& brick, int64_t vocab, int64_t d_model);

  int64_t vocab() const { return table_.dim(0); }
  // ids int32 [n] (each in [0, vocab), checked by the caller) -> out F32 [n, D].
  void Lookup(const int32_t* ids, int64_t n, float* out) const;

  const Tensor& table() const { return table_; }

 private:
  Tensor table_;  // storage dtype [V, D]
};

}  // namespace brickrt
