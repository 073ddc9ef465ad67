// Loading what brick run and brick chat run: a checkpoint directory, a registry model or a submodel
// spec (composed, its placement connected). Implemented in cli/cmd_run.cpp.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "bricks/model.h"
#include "cli/args.h"
#include "cli/run_args.h"
#include "core/status.h"
#include "node/split.h"
#include "registry/registry.h"

namespace brickrt::cli {

// The model r names (checkpoint, spec or model_ref); *manifest gets NAME@VERSION for a registry model
// (the spec's name for a spec). A spec with a `placement:` section also connects to its nodes (*split,
// which must outlive sessions using it). *records gets the brick records (for a trace's digests).
// Progress lines go to stderr when it is a terminal.
Result<std::shared_ptr<const Model>> LoadModel(const ArgParser& a, const RunArgs& r, std::string* manifest,
                                               std::unique_ptr<SplitPlan>* split, std::vector<BrickRecord>* records);

}  // namespace brickrt::cli
