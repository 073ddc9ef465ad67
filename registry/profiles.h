// Expert profiles (issue #7): how often each expert of each layer was chosen over some token data, and
// the gate mass it received, stored in the registry under a name (schema v4, table `profiles`) with
// the model manifest it was measured on. A profile drives pruning: ExpertsUnderThreshold.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/json.h"
#include "core/model_config.h"
#include "core/status.h"

namespace brickrt {

struct LayerProfile {
  int64_t layer = 0;
  bool attention = false;          // the attention experts (else MLP)
  std::vector<int64_t> counts;     // [router's experts]: rows that chose the expert (original ids)
  std::vector<double> gate_mass;   // [router's experts]: sum of the gates it received
};

struct ExpertProfile {
  std::string name;         // registry name (no '/', '@', ':' or whitespace)
  int64_t manifest_id = 0;  // the manifest measured (ManifestRecord::id)
  std::string manifest;     // its ref, "molm-350m@1"
  std::string data_path;    // the token file, as given
  std::string data_digest;  // SHA-256 hex of the token file
  int64_t tokens = 0;       // tokens routed (rows per block)
  std::string created_at;   // set by SaveProfile
  std::vector<LayerProfile> layers;  // for each layer: attention, then MLP
};

// [{"layer": i, "kind": "attn"|"mlp", "counts": [...], "gate_mass": [...]}, ...], as stored and as
// `brick profile --json` prints it.
JsonValue ProfileLayersToJson(const std::vector<LayerProfile>& layers);

// Which experts of one kind a threshold removes.
struct ProfileCut {
  std::vector<std::vector<int64_t>> removed;  // per layer: original ids under the threshold, ascending
  // Layers where the threshold would have left fewer than top_k experts: the top_k most chosen stay
  // (ties: lower id), and a sentence says so.
  std::vector<std::string> notes;
};

// Normalised frequency of expert e of layer l = counts[e] / (max count among the experts cfg keeps in
// l); experts cfg keeps whose frequency is below `threshold` are removed, but never so many that fewer
// than top_k stay. Errors (InvalidArgument): threshold outside [0, 1] or not a number, top_k < 1, or a
// profile whose layers or expert counts do not match cfg (measured on another model).
Result<ProfileCut> ExpertsUnderThreshold(const ExpertProfile& p, const ModelConfig& cfg, bool attention,
                                         double threshold, int top_k);

}  // namespace brickrt
