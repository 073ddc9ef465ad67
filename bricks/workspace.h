// Workspace: every scratch buffer one forward step needs, sized once for the largest step a session
// allows, so prefill and decode never allocate.
#pragma once

#include <cstdint>
#include <vector>

#include "bricks/dispatch.h"
#include "core/model_config.h"
#include "core/tensor.h"

namespace brickrt {

// The MLP block's buffers when some experts run on executors (bricks/executor.h): every expert's
// output is kept until all are in, then combined in expert order.
struct SplitScratch {
  Tensor local_out;   // F32 [R·k, D]  each local expert's outputs, at its pair offset
  Tensor remote_in;   // F32 [R·k, D]  the rows sent, executor after executor
  Tensor remote_out;  // F32 [R·k, D]  their outputs, same layout
  std::vector<std::vector<int64_t>> experts;  // per executor: the call's expert ids (reserved E_max)
  std::vector<std::vector<int32_t>> counts;   // per executor: rows per expert (reserved E_max)
  std::vector<const float*> expert_out;       // [E_max] where each kept slot's outputs are
  std::vector<bool> started;                  // per executor: a call is in flight
  std::vector<uint8_t> available;             // per executor: ExpertExecutor::Available this layer
  std::vector<uint8_t> skip;                  // [E_max] kept slots left out of this layer's routing
};

struct Workspace {
  // lora_rank: the largest LoRA rank of the model's attachments (Model::MaxLoraRank), 0 without.
  // executors: how many the session's MlpPlacement has (0: every expert is local, no SplitScratch).
  Workspace(const ModelConfig& cfg, int64_t max_rows, int64_t max_keys, int n_threads, int64_t lora_rank = 0,
            int executors = 0);

  int64_t max_rows = 0;
  Tensor hidden;        // F32 [R, D]   residual stream
  Tensor normed;        // F32 [R, D]   LN output (also the new cache rows)
  Tensor router;        // F32 [R, G + E_max]
  Tensor gates;         // F32 [R, k_max]
  std::vector<int32_t> ids;  // [R, k] expert ids (k of the block that routed last)
  int mlp_k = 0;             // experts per row of the MLP block's last routing: k_mlp, or fewer while
                             // executors are unavailable (0: the block added nothing)
  Tensor pair_in;       // F32 [R, max(D, A)]  one expert's rows, gathered
  Tensor pair_mid;      // F32 [R, max(A, F)]  queries / MLP hidden
  Tensor pair_mid2;     // F32 [R, A]          attention output
  Tensor pair_out;      // F32 [R, D]          expert outputs before gating
  std::vector<int64_t> positions;  // [R] absolute position of each gathered row
  Tensor attn_scratch;  // F32 [StickBreakWorkspaceFloats(max_keys, threads)]
  ExpertGroups groups;
  Tensor lora;          // F32 [R, r_max]  LoRA rows x·Aᵀ (bricks/lora.h); empty without LoRAs
  SplitScratch split;   // empty without executors

  // The LoRA scratch for up to max_rows rows of rank <= the workspace's lora_rank (asserted).
  float* LoraScratch(int64_t rank);
};

}  // namespace brickrt
