// Internal to registry/grow*.cpp: reading and checking the two files `brick grow` imports (the new
// experts and the router rows) against the model being grown. Not part of the public API.
#pragma once

#include <string>
#include <vector>

#include "core/brick_data.h"
#include "core/model_config.h"
#include "core/status.h"
#include "registry/grow.h"

namespace brickrt::grow_internal {

struct GrowFiles {
  std::vector<BrickData> experts;  // n_new expert bricks, indices E..E+n_new-1, the model's dtype
  BrickData router;                // the old router brick with w2 [E + n_new, G] (w1, b1 shared with it)
};

// Reads req.experts_path and req.router_path (format: GrowModel in grow.h) and checks every tensor's
// name, dtype, shape and values against cfg (the base's config) and old_router (the layer's router
// brick as loaded; router_ref names it in errors). Errors as GrowModel, each one line naming the file
// and the tensor.
Result<GrowFiles> ReadGrowFiles(const GrowRequest& req, const ModelConfig& cfg, const BrickData& old_router,
                                const std::string& router_ref);

}  // namespace brickrt::grow_internal
