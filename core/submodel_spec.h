// A submodel spec (issue #4): the YAML file that says which model to start from, which experts to
// keep or drop, which plugins to attach and where bricks run. Parsed and checked for shape only here.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/device_ref.h"
#include "core/status.h"

namespace brickrt {

// A set of non-negative indices as inclusive ranges, in file order (not merged or sorted). Written
// as 3, "0-7", or a list of those: [1, 4, "6-9"].
struct IndexRanges {
  std::vector<std::pair<int64_t, int64_t>> ranges;  // each first <= second, both >= 0

  bool Contains(int64_t index) const;
};

// Which experts of one kind (mlp or attention) survive, and how many each token uses.
struct ExpertSelection {
  std::optional<int> top_k;  // >= 1 when set; unset: the model's own top_k
  // kAll: every expert stays (layers is empty). kDrop: listed experts are removed from the listed
  // layers. kKeep: only listed experts stay in the listed layers; unlisted layers keep all.
  // kProfile (`keep: {profile: NAME, threshold: T}`): in every layer, the experts the stored profile
  // NAME counted at least T times as often as the layer's busiest stay (docs/profiling.md).
  enum class Mode { kAll, kDrop, kKeep, kProfile } mode = Mode::kAll;
  // Layer ranges -> expert ranges, in file order. No layer appears under two keys.
  std::vector<std::pair<IndexRanges, IndexRanges>> layers;
  std::string profile;     // kProfile: the profile's registry name
  double threshold = 0.0;  // kProfile: in [0, 1]
};

struct PluginSpec {
  std::string lora_ref;  // NAME, NAME@VERSION or NAME:TAG of a `lora` brick; never empty
  double scale = 1.0;    // finite
  bool merge = false;    // true: fold into new versions of the target bricks
};

struct PlacementRule {
  std::string match;  // brick-name glob, e.g. "L*.mlp.E*"
  // "local" (this process, on PlacementSpec::device), a device of this process ("cpu", "cuda:N"; see
  // core/device_ref.h) or the name of a node in PlacementSpec::nodes.
  std::string on;
};

struct NodeSpec {
  std::string name;       // never "local"
  std::string endpoint;   // a ZeroMQ endpoint, e.g. "tcp://127.0.0.1:7001"
  int timeout_ms = 1000;  // >= 1
  // ZeroMQ CURVE (docs/protocol.md, "CURVE"), both or neither: the node's public key file
  // (`brick keygen`'s NAME.pub) and this coordinator's secret key file (NAME.key, mode 0600), whose
  // public key the node must allow. Relative paths are relative to the spec file. Empty: no CURVE.
  std::string server_key;
  std::string client_key;
};

struct PlacementSpec {
  // Where this process runs the bricks no rule sends elsewhere (and those a rule places on `local`).
  DeviceRef device;
  std::vector<NodeSpec> nodes;       // file order, unique names; none is named like a device
  std::vector<PlacementRule> rules;  // first match wins; a brick no rule matches runs locally
  std::string on_failure = "fail";   // "fail" | "local-fallback" | "skip-expert"
};

struct SubmodelSpec {
  std::string model;  // NAME, NAME@VERSION or NAME:TAG; never empty
  std::string name;   // manifest name for --save; empty when the file has none
  ExpertSelection mlp, attention;
  std::vector<PluginSpec> plugins;
  std::optional<PlacementSpec> placement;
  std::string source_path;  // the path given to the parser, for later error messages
};

// Parses and structurally validates a spec; nothing is looked up in a registry. Every error is
// InvalidArgument with a message "SOURCE_PATH:LINE:COL: KEY: what was expected" (1-based), covering
// malformed YAML, unknown or duplicate keys, wrong types, bad ranges and indices, top_k < 1, drop
// together with keep, a plugin without `lora`, and placement rules naming an undeclared node.
Result<SubmodelSpec> ParseSubmodelSpec(std::string_view yaml_text, const std::string& source_path);

// Makes `device` where the spec's model runs (placement.device, adding an empty placement when it has
// none): `brick run --device` and a coordinator's `device:` override the spec's own.
void SetPlacementDevice(SubmodelSpec* spec, const DeviceRef& device);

// Reads `path` (at most 1 MiB; errors as ReadFileCapped) and parses it with ParseSubmodelSpec.
Result<SubmodelSpec> ReadSubmodelSpec(const std::string& path);

}  // namespace brickrt
