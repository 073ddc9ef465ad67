// Session: runs a batch of sequences of different lengths through a model with per-sequence KV
// caches. One Forward call handles any mix of prefill chunks and single decode tokens; all scratch
// is allocated when the session is created, so the decode loop does not allocate.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "bricks/kv_cache.h"
#include "bricks/model.h"
#include "bricks/workspace.h"
#include "core/status.h"
#include "core/thread_pool.h"

namespace brickrt {

struct SessionOptions {
  int max_sequences = 8;          // sequences alive at once
  int64_t max_context = 2048;     // tokens per sequence (prompt + generated)
  int64_t max_step_tokens = 2048;  // new tokens over all sequences in one Forward call
};

// New tokens for one sequence in one step.
struct SequenceChunk {
  int seq = 0;                       // id from AddSequence
  std::span<const int32_t> tokens;   // non-empty
};

class Session {
 public:
  // `pool` must outlive the session; nullptr runs on the calling thread.
  Session(std::shared_ptr<const Model> model, const SessionOptions& opts, ThreadPool* pool);

  const Model& model() const { return *model_; }
  const SessionOptions& options() const { return opts_; }

  // A new empty sequence; its cache (max_context rows per layer) is allocated here.
  Result<int> AddSequence();
  void RemoveSequence(int seq);
  // Tokens in the sequence's cache. REQUIRES: seq is alive.
  int64_t Length(int seq) const;

  // Appends each chunk's tokens to its sequence and runs the model on all of them together.
  // logits F32: with all_positions, [Σ chunk lengths, V] in chunk order; otherwise [chunks, V], the
  // last position of each chunk. On error (bad token id, unknown sequence, a sequence twice, too many
  // tokens, context full) nothing changes.
  Status Forward(std::span<const SequenceChunk> chunks, bool all_positions, float* logits);

  // Bytes of KV cache currently allocated.
  int64_t CacheBytes() const;

 private:
  Status Validate(std::span<const SequenceChunk> chunks) const;

  std::shared_ptr<const Model> model_;
  SessionOptions opts_;
  ThreadPool* pool_;
  Workspace ws_;
  std::vector<std::unique_ptr<KvCache>> caches_;  // slot -> cache (nullptr: free)
  std::vector<KvCache*> cache_ptrs_;              // same, raw, for the blocks
  // Per-step row metadata, sized max_step_tokens.
  std::vector<int32_t> row_seq_, row_token_;
  std::vector<int64_t> row_pos_;
  std::vector<int64_t> out_rows_;  // rows whose logits are returned
};

}  // namespace brickrt
