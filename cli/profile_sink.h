// ProfileSink: a TraceSink that counts, per layer and expert (original ids), the rows routed to it and
// the gate mass it received — what brick profile stores (registry/profiles.h).
#pragma once

#include <cstdint>
#include <vector>

#include "bricks/trace.h"
#include "core/model_config.h"
#include "registry/profiles.h"

namespace brickrt::cli {

class ProfileSink : public TraceSink {
 public:
  // Sized from cfg's per-layer router expert counts (removed experts stay at zero).
  explicit ProfileSink(const ModelConfig& cfg);
  void OnBlock(const BlockTrace& t) override;
  // For each layer: attention, then MLP.
  std::vector<LayerProfile> Layers() const { return layers_; }
  // Rows seen by layer 0's attention block: tokens routed.
  int64_t tokens() const { return tokens_; }

 private:
  std::vector<LayerProfile> layers_;  // [2 * n_layer]: 2l attention, 2l + 1 MLP
  int64_t tokens_ = 0;
};

}  // namespace brickrt::cli
