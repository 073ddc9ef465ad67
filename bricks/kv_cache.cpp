// KvCache allocation.
#include "bricks/kv_cache.h"

namespace brickrt {

KvCache::KvCache(int64_t n_layer, int64_t capacity, int64_t d_model) : capacity_(capacity) {
  layers_.reserve(static_cast<size_t>(n_layer));
  for (int64_t l = 0; l < n_layer; ++l) layers_.emplace_back(DType::kF32, Shape{capacity, d_model});
}

int64_t KvCache::bytes() const {
  int64_t n = 0;
  for (const Tensor& t : layers_) n += static_cast<int64_t>(t.nbytes());
  return n;
}

}  // namespace brickrt
