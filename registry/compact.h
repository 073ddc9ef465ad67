// Turning a submodel with removed experts into the plain model a checkpoint can hold: what `brick
// export` writes for a submodel, so the result loads in any ModuleFormer implementation.
#pragma once

#include <utility>
#include <vector>

#include "core/brick_data.h"
#include "core/model_config.h"
#include "core/status.h"

namespace brickrt {

// Drops the removed experts' rows from each router's w2, renumbers the kept experts 0.. in order and
// shrinks the config's per-layer counts (its removed lists become empty). The bricks of removed
// experts must not be among `bricks`. A config without removals is returned as it is. Errors:
// InvalidArgument when a router's w2 has not the config's row count, or a removed expert's brick is
// present.
Result<std::pair<ModelConfig, std::vector<BrickData>>> CompactRemovedExperts(const ModelConfig& cfg,
                                                                             std::vector<BrickData> bricks);

}  // namespace brickrt
