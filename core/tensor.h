// Tensor: an immutable-by-convention, shared, 64-byte-aligned block of elements with a dtype and a
// row-major shape. Copies share storage (weights are read-only after load); use Clone() for a copy.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace brickrt {

using Shape = std::vector<int64_t>;

// "[16, 1024, 1024]"
std::string ShapeToString(const Shape& s);
int64_t NumElements(const Shape& s);
// The element count, or nullopt when a dimension is negative or the product overflows int64 (for
// shapes that come from files or users).
std::optional<int64_t> CheckedNumElements(const Shape& s);

// A 64-byte-aligned allocation; pages are touched at allocation (pre-faulted) when prefault is set,
// so the first use in a hot loop pays no page faults.
std::shared_ptr<uint8_t> AllocateAligned(size_t bytes, bool prefault = true);

class Tensor {
 public:
  Tensor() = default;
  // Zero-filled tensor of the given dtype and shape.
  Tensor(DType dtype, Shape shape);
  // Storage left unwritten, for a caller that overwrites every byte at once (a file or blob read):
  // saves a full pass over memory; the pages fault in as the read fills them.
  static Tensor Uninitialized(DType dtype, Shape shape);

  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  int rank() const { return static_cast<int>(shape_.size()); }
  int64_t dim(int i) const { return shape_[static_cast<size_t>(i)]; }
  int64_t numel() const { return NumElements(shape_); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * DTypeSize(dtype_); }
  bool empty() const { return storage_ == nullptr; }

  const void* data() const { return storage_.get(); }
  void* mutable_data() { return storage_.get(); }
  template <typename T>
  const T* data_as() const { return reinterpret_cast<const T*>(storage_.get()); }
  template <typename T>
  T* mutable_data_as() { return reinterpret_cast<T*>(storage_.get()); }

  // Deep copy.
  Tensor Clone() const;
  // Same elements converted to another dtype (a deep copy even when the dtype is unchanged).
  Tensor ConvertTo(DType dtype) const;
  // Same storage, new shape. REQUIRES: same number of elements.
  Tensor Reshaped(Shape shape) const;

 private:
  DType dtype_ = DType::kF32;
  Shape shape_;
  std::shared_ptr<uint8_t> storage_;
};

}  // namespace brickrt
