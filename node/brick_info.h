// A registry MLP expert brick as the wire protocol names it (Hello, Welcome, ExpertBatch).
#pragma once

#include <cstdint>

#include "node/wire.h"
#include "registry/registry.h"

namespace brickrt {

// REQUIRES: rec.kind == BrickKind::kMlpExpert (only MLP experts run on nodes so far).
inline wire::BrickInfo MlpBrickInfo(const BrickRecord& rec) {
  return {rec.name, rec.digest, wire::ExpertKind::kMlp, static_cast<uint32_t>(rec.layer),
          static_cast<uint32_t>(rec.index)};
}

}  // namespace brickrt
