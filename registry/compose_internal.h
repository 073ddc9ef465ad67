// Internal to registry/compose*.cpp: the checks and counts Compose runs once the bricks and plugins
// of a composition are known.
#pragma once

#include <vector>

#include "core/status.h"
#include "registry/compose.h"

namespace brickrt::compose_internal {

// compose_placement.cpp. Every placement rule must match some brick of the composition (else it is a
// typo), and no private brick may be placed on a node. A lora goes where its target goes, so the
// target's placement must be local when the target or any lora on it is private.
Status CheckPlacement(const Composition& c);

// compose_costs.cpp. Fills c's params_total, params_active, base_params_total and base_bytes.
void CountCosts(const std::vector<BrickRecord>& base_bricks, Composition* c);

}  // namespace brickrt::compose_internal
