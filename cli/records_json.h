// JSON forms of registry records, shared by ls/show/models so scripts see one shape everywhere.
#pragma once

#include "core/json.h"
#include "registry/registry.h"

namespace brickrt::cli {

// {name, version, kind, layer, index, digest, bytes, visibility, created_at}; with_detail adds
// parent_id, metadata and tensors [{name, dtype, shape, bytes}].
JsonValue BrickJson(const BrickRecord& b, bool with_detail);
// {name, version, ref, kind ("model" | "plugin"), base (the manifest ref a submodel or plugin was made
// from, else null), tags, n_layer, bricks, created_at, source}
JsonValue ManifestJson(const ManifestRecord& m);

}  // namespace brickrt::cli
