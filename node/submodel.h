// Assembling a runnable model from the registry: a stored manifest (an imported model, or a saved
// submodel with its lora bricks and scales) or a fresh composition of a spec. Only the bricks a
// submodel keeps are read; plugins are merged into their targets or attached on the fly.
#pragma once

#include <cstdint>
#include <memory>

#include "bricks/model.h"
#include "core/status.h"
#include "registry/compose.h"
#include "registry/registry.h"

namespace brickrt {

struct LoadedModel {
  std::shared_ptr<const Model> model;
  int64_t bytes_read = 0;  // payload bytes read from the registry
};

// A model manifest: its bricks, less the experts its config removes (they are not in a saved
// submodel's list), with its lora bricks attached at their stored scales. Errors: InvalidArgument for
// a plugin manifest (attach it from a spec instead); as Registry::LoadBricks and Model::Build.
Result<LoadedModel> LoadManifestModel(const Registry& reg, const ManifestRecord& manifest);

// A composition: its kept bricks, `merge: true` plugins folded into their targets (in spec order),
// the others attached on the fly. Errors: as Registry::LoadBricks, MergeLora and Model::Build.
Result<LoadedModel> LoadComposition(const Registry& reg, const Composition& c);

// Stores a composition as a manifest named c.name (`brick compose --save`): the kept base bricks as
// they are, each merge target as a new brick derived from its original (lineage; private when the
// original or any merged lora is private), and the on-the-fly loras with their scales. Only the merge
// targets and loras are read. Errors: InvalidArgument when the spec has no `name:`; as SaveManifest.
Result<ImportResult> SaveComposition(Registry& reg, const Composition& c);

}  // namespace brickrt
