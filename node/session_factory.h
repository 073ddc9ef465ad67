// The session a loaded model runs in, chosen by its placement (issue #8): on the CPU or, when the
// plan's device is cuda:N, on that GPU; either way with the MLP experts the plan sends elsewhere (nodes,
// the other device) on its executors. The CLI and the coordinator create every session here, so a placement means the
// same everywhere.
#pragma once

#include <memory>

#include "bricks/model.h"
#include "bricks/model_session.h"
#include "bricks/session.h"
#include "core/status.h"
#include "core/thread_pool.h"
#include "node/split.h"

namespace brickrt {

// plan: may be null (everything on the CPU). opts.mlp_placement is set from the plan's executors.
// pool: the CPU threads (unused by a GPU session). Errors: Session::Create's; for a plan on a GPU,
// Unsupported in a build without CUDA, and the GPU's own errors (no such device, not enough memory).
Result<std::unique_ptr<ModelSession>> CreateSession(std::shared_ptr<const Model> model, const SplitPlan* plan,
                                                    SessionOptions opts, ThreadPool* pool);

}  // namespace brickrt
