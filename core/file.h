// Reading small files (configs, indexes) whole, with a size cap so a hostile or mistaken path
// (/dev/zero, a 10 GB file) is an error, not an out-of-memory.
#pragma once

#include <cstddef>
#include <string>

#include "core/status.h"

namespace brickrt {

// NotFound if missing, InvalidArgument if larger than max_bytes or not a regular file, IoError on a
// failed read.
Result<std::string> ReadFileCapped(const std::string& path, size_t max_bytes);

}  // namespace brickrt
