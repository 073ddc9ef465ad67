// Embedding lookup: widen the selected rows to F32.
#include "bricks/embedding.h"

#include "bricks/norm.h"

namespace brickrt {

Result<Embedding> Embedding::FromData(const BrickData& brick, int64_t vocab, int64_t d_model) {
  BRICK_RETURN_IF_ERROR(ExpectTensor(brick, "weight", {vocab, d_model}));
  Embedding e;
  e.table_ = *brick.Find("weight");
  return e;
}

void Embedding::Lookup(const int32_t* ids, int64_t n, float* out) const {
  const int64_t D = table_.dim(1);
  const size_t row_bytes = static_cast<size_t>(D) * DTypeSize(table_.dtype());
  const auto* base = static_cast<const uint8_t*>(table_.data());
  for (int64_t i = 0; i < n; ++i) {
    ConvertToF32(base + static_cast<size_t>(ids[i]) * row_bytes, table_.dtype(), static_cast<size_t>(D), out + i * D);
  }
}

}  // namespace brickrt
