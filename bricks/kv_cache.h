// KV cache of one sequence. MoLM's keys and values are both the LN₁ output (spec G2), so one F32
// [capacity, D] tensor per layer holds both. Allocated (and pre-faulted) once; never grows.
#pragma once

#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace brickrt {

class KvCache {
 public:
  KvCache(int64_t n_layer, int64_t capacity, int64_t d_model);

  int64_t capacity() const { return capacity_; }
  int64_t length() const { return length_; }
  void set_length(int64_t n) { length_ = n; }

  // F32 [capacity, D] of one layer; rows [0, length) are valid.
  float* layer(int64_t l) { return layers_[static_cast<size_t>(l)].mutable_data_as<float>(); }
  const float* layer(int64_t l) const { return layers_[static_cast<size_t>(l)].data_as<float>(); }
  int64_t bytes() const;

 private:
  std::vector<Tensor> layers_;
  int64_t capacity_ = 0;
  int64_t length_ = 0;
};

}  // namespace brickrt
