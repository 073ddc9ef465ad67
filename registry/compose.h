// Composition (issue #4): a submodel spec resolved against the registry into pinned brick versions —
// which of the base model's bricks it keeps, the config it runs with, the plugins it attaches and what
// that costs. Plain values only; loading and running them is the caller's (node/submodel.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/model_config.h"
#include "core/status.h"
#include "core/submodel_spec.h"
#include "registry/registry.h"

namespace brickrt {

// One plugin of the spec, resolved: its manifest and the lora bricks that land on kept bricks.
struct PluginPlan {
  ManifestRecord plugin;
  std::vector<BrickRecord> bricks;  // kept-target loras, in the plugin's order
  // Loras whose target the spec removed: they have nothing to act on and are not loaded.
  std::vector<std::string> skipped;
  double scale = 1.0;
  bool merge = false;
  // The base is a saved submodel that attaches these loras on the fly (plugin is then the base's
  // manifest); they carry over at their stored scale.
  bool inherited = false;
};

// Per layer: the experts kept (original ids) out of how many the base router scores.
struct LayerPlan {
  int64_t layer = 0;
  std::vector<int64_t> att_kept, mlp_kept;
  int64_t att_total = 0, mlp_total = 0;
  int64_t bytes = 0;  // brick bytes this layer loads (norms, routers, kept experts)
};

struct Composition {
  std::string name;                 // the spec's `name` (empty when it has none)
  std::string source_path;          // the spec file
  ManifestRecord base;              // the resolved base manifest
  ModelConfig config;               // base config with the spec's top_k and removals
  std::vector<BrickRecord> bricks;  // kept base bricks, in base manifest order
  std::vector<PluginPlan> plugins;  // spec order
  std::optional<PlacementSpec> placement;
  std::vector<LayerPlan> layers;
  // Things the user should know that are not errors: a profile threshold that would have left a layer
  // with fewer than top_k experts (the top_k most chosen stay).
  std::vector<std::string> notes;

  // Parameters (elements) of the kept bricks and attached loras, and those one token reads in decode
  // (embedding row, norms, routers, top-k experts of each layer, lm head, loras on what it reads).
  int64_t params_total = 0, params_active = 0;
  int64_t bytes_to_load = 0;                      // payload bytes read from the registry (kept bricks + plugin bricks)
  int64_t base_params_total = 0, base_bytes = 0;  // the same for the whole base model
};

// Resolves `spec` against `reg`. Errors (InvalidArgument unless noted), each naming the spec file and
// what is wrong: the model ref or a plugin ref not found (NotFound, as ResolveModel), a model ref that
// is a plugin or a plugin ref that is a model; a layer or expert index beyond the base model; an
// expert already removed from the base; a selection that leaves a layer without experts; top_k larger
// than the experts a layer keeps; a `keep: {profile, threshold}` naming no stored profile (NotFound) or a
// profile measured on another manifest; a lora whose shape does not fit its target; a private brick placed
// on a node.
Result<Composition> Compose(const Registry& reg, const SubmodelSpec& spec);

}  // namespace brickrt
