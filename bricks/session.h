// Session: runs a batch of sequences of different lengths through a model with per-sequence KV
// caches. One Forward call handles any mix of prefill chunks and single decode tokens; all scratch
// is allocated when the session is created, so the decode loop does not allocate.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "bricks/blocks.h"
#include "bricks/executor.h"
#include "bricks/kv_cache.h"
#include "bricks/model.h"
#include "bricks/model_session.h"
#include "bricks/trace.h"
#include "bricks/workspace.h"
#include "core/status.h"
#include "core/thread_pool.h"

namespace brickrt {

struct SessionOptions {
  int max_sequences = 8;          // sequences alive at once
  int64_t max_context = 2048;     // tokens per sequence (prompt + generated)
  int64_t max_step_tokens = 2048;  // new tokens over all sequences in one Forward call
  // Where MLP experts run (bricks/executor.h); nullptr: all local. Not owned; must outlive the
  // session. Checked by Create against the model's layers and kept experts.
  const MlpPlacement* mlp_placement = nullptr;
  TraceSink* trace = nullptr;  // told about every block of every step (bricks/trace.h); not owned
};

// New tokens for one sequence in one step.
struct SequenceChunk {
  int seq = 0;                       // id from AddSequence
  std::span<const int32_t> tokens;   // non-empty
};

class Session final : public ModelSession {
 public:
  // Validates the options (each >= 1 and within limits) and that the workspace plus max_sequences
  // caches fit in this machine's memory; the error says how many bytes were asked for. For options
  // that come from users.
  static Result<std::unique_ptr<Session>> Create(std::shared_ptr<const Model> model, const SessionOptions& opts,
                                                 ThreadPool* pool);
  // REQUIRES: options as Create checks them. `pool` must outlive the session; nullptr runs on the
  // calling thread.
  Session(std::shared_ptr<const Model> model, const SessionOptions& opts, ThreadPool* pool);

  const Model& model() const override { return *model_; }
  const SessionOptions& options() const override { return opts_; }

  // A new empty sequence. Its cache (max_context rows per layer) is allocated the first time its slot
  // is used and kept for the next sequence after RemoveSequence, so serving requests does not
  // re-allocate (and re-fault) caches.
  Result<int> AddSequence() override;
  void RemoveSequence(int seq) override;
  // Tokens in the sequence's cache; -1 if seq is not alive.
  int64_t Length(int seq) const override;
  int LiveSequences() const override;

  // Appends each chunk's tokens to its sequence and runs the model on all of them together.
  // logits F32: with all_positions, [Σ chunk lengths, V] in chunk order; otherwise [chunks, V], the
  // last position of each chunk. On error (bad token id, unknown sequence, a sequence twice, too many
  // tokens, context full, an executor's error) nothing changes: no sequence advances.
  Status Forward(std::span<const SequenceChunk> chunks, bool all_positions, float* logits) override;

  // Bytes of KV cache currently allocated (live and reusable slots).
  int64_t CacheBytes() const;
  // Bytes Create would allocate up front plus one cache per sequence.
  static int64_t PlannedBytes(const ModelConfig& cfg, const SessionOptions& opts, int n_threads,
                              int64_t lora_rank = 0);

 private:
  using Clock = std::chrono::steady_clock;
  // Tells opts_.trace what the block just run did (its routing is still in ws_).
  void Trace(int64_t layer, bool attention, const StepRows& rows, Clock::time_point start) const;

  Status Validate(std::span<const SequenceChunk> chunks) const;

  std::shared_ptr<const Model> model_;
  SessionOptions opts_;
  ThreadPool* pool_;
  Workspace ws_;
  bool Live(int seq) const;

  std::vector<std::unique_ptr<KvCache>> caches_;  // slot -> cache, kept when the slot is freed
  std::vector<KvCache*> cache_ptrs_;              // same, raw, for the blocks
  std::vector<bool> live_;                        // slot -> holds a sequence
  // Per-step row metadata, sized max_step_tokens.
  std::vector<int32_t> row_seq_, row_token_;
  std::vector<int64_t> row_pos_;
  std::vector<int64_t> out_rows_;  // rows whose logits are returned
};

}  // namespace brickrt
