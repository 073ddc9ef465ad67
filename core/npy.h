// NumPy .npy files of little-endian float32 C-order arrays: how golden data (logits, activations
// from the independent NumPy reference) moves between Python and the C++ tests.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "core/status.h"
#include "core/tensor.h"

namespace brickrt {

// Writes a .npy v1.0 file ('<f4', fortran_order False, the given shape; rank 0 is allowed) holding
// NumElements(shape) floats from data. The header is padded so the data starts at a multiple of 64
// bytes, as NumPy does. Returns IoError naming the path when the file cannot be written.
Status WriteNpyF32(const std::string& path, const float* data, const Shape& shape);

// Reads a .npy file (format v1.0, also 2.0/3.0) holding a '<f4' C-order array.
// Errors: NotFound (no such file), Unsupported (another dtype such as '<f8' or '>f4', fortran order),
// Corrupt (bad magic, malformed header, fewer data bytes than the shape needs, or trailing bytes).
Result<std::pair<Shape, std::vector<float>>> ReadNpyF32(const std::string& path);

}  // namespace brickrt
