// Workspace sizing.
#include "bricks/workspace.h"

#include <algorithm>

#include "core/status.h"
#include "kernels/cpu/stickbreak.h"

namespace brickrt {

Workspace::Workspace(const ModelConfig& cfg, int64_t rows, int64_t max_keys, int n_threads, int64_t lora_rank,
                     int executors)
    : max_rows(rows) {
  const int64_t D = cfg.n_embd, A = cfg.att_hidden, F = cfg.ffd_hidden, G = cfg.gating_size;
  int64_t e_max = 1;
  for (int64_t e : cfg.n_att_experts) e_max = std::max(e_max, e);
  for (int64_t e : cfg.n_mlp_experts) e_max = std::max(e_max, e);
  const int64_t k_max = std::max(cfg.k_att, cfg.k_mlp);
  const int64_t pairs = rows * k_max;  // routing pairs of the step
  // One expert's group is live at a time and holds at most one pair per row (a token's top-k ids are
  // distinct), so the gathered buffers need R rows, not R·k.
  hidden = Tensor(DType::kF32, {rows, D});
  normed = Tensor(DType::kF32, {rows, D});
  router = Tensor(DType::kF32, {rows, G + e_max});
  gates = Tensor(DType::kF32, {rows, k_max});
  ids.resize(static_cast<size_t>(rows * k_max));
  pair_in = Tensor(DType::kF32, {rows, std::max(D, A)});
  pair_mid = Tensor(DType::kF32, {rows, std::max(A, F)});
  pair_mid2 = Tensor(DType::kF32, {rows, A});
  pair_out = Tensor(DType::kF32, {rows, D});
  positions.resize(static_cast<size_t>(rows));
  attn_scratch = Tensor(DType::kF32, {std::max<int64_t>(1, kernels::StickBreakWorkspaceFloats(max_keys, n_threads))});
  groups.Reserve(pairs, e_max);
  if (lora_rank > 0) lora = Tensor(DType::kF32, {rows, lora_rank});
  if (executors > 0) {
    const int64_t mlp_pairs = rows * std::max(1, cfg.k_mlp);
    split.local_out = Tensor(DType::kF32, {mlp_pairs, D});
    split.remote_in = Tensor(DType::kF32, {mlp_pairs, D});
    split.remote_out = Tensor(DType::kF32, {mlp_pairs, D});
    split.experts.resize(static_cast<size_t>(executors));
    split.counts.resize(static_cast<size_t>(executors));
    for (auto& v : split.experts) v.reserve(static_cast<size_t>(e_max));
    for (auto& v : split.counts) v.reserve(static_cast<size_t>(e_max));
    split.expert_out.resize(static_cast<size_t>(e_max));
    split.started.resize(static_cast<size_t>(executors));
    split.available.resize(static_cast<size_t>(executors));
    split.skip.resize(static_cast<size_t>(e_max));
  }
}

float* Workspace::LoraScratch(int64_t rank) {
  BRICK_ASSERT(!lora.empty() && rank <= lora.dim(1),
               "LoRA rank beyond the workspace's (sized from Model::MaxLoraRank)");
  return lora.mutable_data_as<float>();
}

}  // namespace brickrt
