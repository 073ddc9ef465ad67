// MlpPlacement helpers.
#include "bricks/executor.h"

#include <algorithm>

namespace brickrt {

bool MlpPlacement::AnyRemote(int64_t layer) const {
  if (layer < 0 || static_cast<size_t>(layer) >= owner.size()) return false;
  const std::vector<int32_t>& o = owner[static_cast<size_t>(layer)];
  return std::any_of(o.begin(), o.end(), [](int32_t x) { return x != kLocal; });
}

}  // namespace brickrt
