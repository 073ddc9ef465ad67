// Tracing a forward step (brick run --trace): after each block of each layer the session tells a
// sink which experts every row was routed to, with which gates, where each ran and how long the
// block took. A session without a sink pays one null check per block.
#pragma once

#include <cstdint>
#include <vector>

namespace brickrt {

struct BlockTrace {
  int64_t layer = 0;
  bool attention = false;                       // the attention block (else the MLP block)
  int64_t n = 0;                                // rows of the step
  int k = 0;                                    // experts per row
  const int32_t* seq = nullptr;                 // [n] sequence of each row
  const int64_t* pos = nullptr;                 // [n] its position
  const int32_t* tokens = nullptr;              // [n] the token id each row feeds
  const int32_t* slots = nullptr;               // [n, k] kept-expert slots, descending gate
  const float* gates = nullptr;                 // [n, k]
  const std::vector<int64_t>* ids = nullptr;    // slot -> original expert id (brick index)
  const std::vector<int32_t>* owner = nullptr;  // MLP: slot -> executor or MlpPlacement::kLocal; null: local
  double seconds = 0;                           // the block's wall time in this step (all rows together)
};

class TraceSink {
 public:
  virtual ~TraceSink() = default;
  // Called on the session's thread right after the block; the pointers are valid during the call.
  virtual void OnBlock(const BlockTrace& t) = 0;
};

}  // namespace brickrt
