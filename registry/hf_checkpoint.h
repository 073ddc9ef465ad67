// Hugging Face ModuleFormer checkpoints (config.json + model.safetensors or a sharded
// model.safetensors.index.json) <-> ModelConfig + one BrickData per brick (core/brick_data.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/brick_data.h"
#include "core/model_config.h"
#include "core/status.h"

namespace brickrt {

struct LoadedCheckpoint {
  ModelConfig config;  // per-layer expert counts and dtype as found in the tensors
  // Order: embedding; per layer i: norm ln1, attn_router, attn experts 0..E_a-1, norm ln2,
  // mlp_router, mlp experts 0..E_m-1; then norm ln_f, lm_head.
  std::vector<BrickData> bricks;
  std::string description;  // one line for logs/CLI: layers, sizes, experts, dtype, files, bytes
};

// Loads dir/config.json and the weights (model.safetensors.index.json wins over model.safetensors
// when both exist). Each brick's tensors are read with pread of exactly their bytes (one expert of
// an [E, in, out] tensor is contiguous), in storage orientation and the checkpoint dtype. The dead
// buffers attn.mask / attn.cum_weight are never read (spec G9). Per-layer expert counts come from
// dim 0 of the expert tensors (spec G16); a tied lm_head (tie_word_embeddings and no lm_head.weight)
// shares the embedding's storage.
// Dtype rule: every tensor brickrt reads (weights, biases and norms alike) must have the dtype of
// transformer.wte.weight, one of BF16/F16/F32. Mixed checkpoints (e.g. F32 norms) are rejected
// rather than converted, so bricks stay byte-identical to the file and kernels see one weight dtype.
// Errors, each naming the file and tensor (and expected vs found):
//   NotFound     directory, config.json, model file, shard, or a required tensor missing
//   Corrupt      truncated file, bad safetensors header, tensor shape or expert count that disagrees
//                with config.json or with the other tensors, k_att/k_mlp above a layer's expert count
//   Unsupported  config variant brickrt does not run (hf_config.h), tensor dtype outside BF16/F16/F32
//                or different from the model dtype
//   InvalidArgument  config.json malformed
// Tensors brickrt does not know are logged with log::Warn and skipped.
Result<LoadedCheckpoint> LoadHfCheckpoint(const std::string& dir);

struct WriteOptions {
  uint64_t max_shard_bytes = 0;    // 0: one model.safetensors; else shards of at most this many
                                   // bytes (a larger single tensor gets a shard of its own)
  bool write_dead_buffers = true;  // write attn.mask / attn.cum_weight like the HF code saves them
  int64_t dead_buffer_size = 64;   // their side N ([N, N]); HF uses block_size + history_length =
                                   // 1024, small here so test models stay small
};

// Writes dir/config.json (HfConfigJson) and the weights in HF layout, stacking expert bricks back into
// [E, in, out] tensors. Creates dir (one level) if missing. Every file is written to a temporary name
// and renamed into place; a stale model.safetensors or index of the other layout is removed so the
// loader cannot pick it up. lm_head.weight is omitted when cfg.tie_word_embeddings.
// Errors: InvalidArgument (a brick missing, duplicated, or with a shape/dtype that disagrees with
// cfg, naming the brick and tensor), IoError (naming the path).
Status WriteHfCheckpoint(const std::string& dir, const ModelConfig& cfg, const std::vector<BrickData>& bricks,
                         const WriteOptions& opts = {});

}  // namespace brickrt
