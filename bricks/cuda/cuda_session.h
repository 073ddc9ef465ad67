// CudaSession: the contract of bricks/session.h's Session — a batch of sequences of different lengths
// with per-sequence KV caches, any mix of prefill chunks and decode tokens per Forward — run on one GPU
// from a CudaModel. All step scratch is carved once from one device arena sized for max_step_tokens,
// so Forward allocates nothing (host or device).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "bricks/cuda/cuda_executor_bridge.h"
#include "bricks/cuda/cuda_model.h"
#include "bricks/model_session.h"
#include "bricks/session.h"
#include "core/status.h"
#include "kernels/cuda/matmul.h"
#include "kernels/cuda/memory.h"

namespace brickrt {

class CudaSession final : public ModelSession {
 public:
  // Validates the options as Session::Create does (an mlp_placement sends those MLP experts to its
  // executors, see SplitMlp; a trace sink is told about every block, at the cost of copying each
  // block's routing back and waiting for the block to time it), checks that
  // PlannedBytes plus the model's weights fit
  // in the device's memory (OutOfRange naming the bytes), then allocates the step arena, a stream, a
  // cuBLAS handle and pinned staging on the model's device. Device errors pass through with context.
  // gemv_max_pairs: a block with at most this many (token, expert) pairs runs its experts with
  // ExpertGemvCuda, which finds each pair's expert on the GPU (no host synchronization: a decode step
  // then synchronizes once, for the logits) and widens 16-bit weights in registers; larger blocks, and
  // blocks with LoRA deltas or experts on executors, size one cuBLAS GEMM per expert on the host.
  // 0: always cuBLAS. Above kGemvMaxPairs: InvalidArgument (the split-K scratch is sized for it).
  static constexpr int64_t kGemvMaxPairs = 64;
  static Result<std::unique_ptr<CudaSession>> Create(std::shared_ptr<const CudaModel> model, const SessionOptions& opts,
                                                     int64_t gemv_max_pairs = kGemvMaxPairs);

  // The CPU model the weights were uploaded from (its config, ids, cost figures); gpu_model() runs.
  const Model& model() const override { return model_->cpu(); }
  const CudaModel& gpu_model() const { return *model_; }
  const SessionOptions& options() const override { return opts_; }

  // As Session: a new empty sequence; its device cache (F32 [n_layer, max_context, D]) is allocated the
  // first time its slot is used and kept for the next sequence after RemoveSequence. Errors: OutOfRange
  // at max_sequences, the device's error when the cache cannot be allocated.
  Result<int> AddSequence() override;
  void RemoveSequence(int seq) override;
  int64_t Length(int seq) const override;  // -1 if seq is not alive
  int LiveSequences() const override;

  // As Session::Forward: appends each chunk's tokens and runs the model on all of them; logits (host
  // memory) F32 [Σ chunk lengths, V] with all_positions, else [chunks, V] (each chunk's last position).
  // Validation errors are Session's; on any error no sequence advances. Synchronizes the stream once
  // per MoE block (the expert offsets come back to size the per-expert GEMMs) and once for the logits.
  Status Forward(std::span<const SequenceChunk> chunks, bool all_positions, float* logits) override;

  // Device bytes of KV cache currently allocated (live and reusable slots).
  int64_t CacheBytes() const;
  // Device bytes Create allocates up front (the step arena) plus one cache per sequence.
  static int64_t PlannedBytes(const CudaModel& model, const SessionOptions& opts);

  ~CudaSession();
  CudaSession(const CudaSession&) = delete;
  CudaSession& operator=(const CudaSession&) = delete;

 private:
  struct Scratch;  // device buffers of one step
  CudaSession(std::shared_ptr<const CudaModel> model, const SessionOptions& opts);
  bool Live(int seq) const;
  // Lays out the step's rows in pinned memory (tokens, logits rows, positions, every layer's cache row
  // pointers) and copies them to the device in one copy; sets rows_. n: Σ chunk lengths.
  Status UploadRows(std::span<const SequenceChunk> chunks, bool all_positions, int64_t n, int64_t* n_out);
  // Embedding → every layer → ln_f → lm_head on the n rows of the step, logits of n_out rows copied back.
  Status Run(int64_t n, int64_t n_out, float* logits);
  // One block of layer l on the step's n rows, in blocks.cpp's order: LN (₁ or ₂) → (attention: the
  // rows into the caches) → Route → Experts → Combine; an MLP block with experts on executors: SplitMlp.
  Status Block(size_t l, bool attention, int64_t n);
  // The LN output through router r: top-k (logits + bias first, when given: −inf leaves an expert
  // out) → pairs grouped by expert → (host_offsets: offsets to the host, the block's one
  // synchronization) → the n·k pair rows gathered into the pair buffer.
  Status Route(const CudaRouter& r, int k, int64_t n, const float* bias, bool host_offsets = true);
  // Whether block (l, attention) with P pairs runs its experts with ExpertGemvCuda (see Create).
  bool UseGemv(size_t l, bool attention, int64_t P) const;
  // The gathered pairs through the block's experts: Wq, stick-breaking of every pair over its own
  // sequence's cache, Wo; or W1, tanh GELU, W2. w_in/w_out: per kept slot, device weights, nullptr for
  // an expert not on this GPU (its pairs' outputs are left for an executor to fill). gemv: the
  // projections by ExpertGemvCuda from the device offsets and the layer's pointer tables instead (no
  // LoRA deltas, no executors).
  Status Experts(size_t l, bool attention, int64_t n, int k, const void* const* w_in, const void* const* w_out,
                 bool gemv = false);
  // h += the pairs' gated outputs, per row in ascending expert order.
  Status Combine(int64_t n, int k);
  // y F32 [M, out] += Σ multiplier·(x F32 [M, in]·A)·B over the deltas (bricks/lora.h's AddLoras).
  Status AddLoras(const CudaLoras& loras, const float* x, int64_t M, float* y);
  // Each kept slot's loras on its pairs' rows (x rows of stride ldx, y rows of stride ldy), by the
  // routing's offsets; slots with null weights (on an executor) or without loras are skipped.
  Status AddExpertLoras(const std::vector<CudaLoras>& loras, const void* const* w, int64_t E, const float* x,
                        int64_t ldx, float* y, int64_t ldy);
  // The MLP block of a layer some of whose experts run on executors (bricks/cuda/cuda_executor_bridge.h):
  // route among the available ones, send the executors their rows while the GPU runs its experts, put
  // their outputs in place, combine; route again without an executor whose failed call made it step
  // aside (on_failure: skip-expert), as the CPU block does. (cuda_session_split.cpp)
  Status SplitMlp(size_t l, int64_t n, std::chrono::steady_clock::time_point start);
  // Sets up SplitMlp for `placement` (checked against the model) and steps of up to max_pairs MLP pairs.
  Status PlaceExperts(const MlpPlacement& placement, int64_t max_pairs);
  // With a trace sink (opts.trace): copies the block's routing (ids, gates [n, k]) back, waits for the
  // block to finish and tells the sink, like Session::Trace (cuda_session_trace.cpp). No-op without.
  Status TraceBlock(size_t l, bool attention, int64_t n, int k, std::chrono::steady_clock::time_point start);
  const int32_t* RoutedIds() const;  // the last routing's kept slots, int32 [n, k] (device)
  const float* RoutedGates() const;  // its gates, F32 [n, k] (device)
  float* PairIn() const;             // the gathered pair rows, F32 [P, D] (device)
  float* PairOut() const;            // the experts' outputs, F32 [P, D] (device)
  // This step's cache row pointers of layer l: [n] device pointers.
  float* const* LayerKv(size_t l, int64_t n) const { return rows_.kv + static_cast<int64_t>(l) * n; }

  std::shared_ptr<const CudaModel> model_;
  SessionOptions opts_;
  int64_t gemv_max_pairs_ = kGemvMaxPairs;
  std::vector<uint8_t> block_loras_;  // [layer · 2 + (attention ? 0 : 1)]: the block's experts carry LoRAs
  cuda::Stream stream_;
  cuda::CublasHandle cublas_;
  cuda::DeviceArena arena_;     // the step scratch
  std::unique_ptr<Scratch> s_;  // carved from arena_
  // This step's row metadata on the device (inside the arena; layout by the step's row count).
  struct DeviceRows {
    const int32_t* tokens = nullptr;     // int32 [n]
    const int32_t* out_rows = nullptr;   // int32 [n_out] rows whose logits are returned
    const int64_t* positions = nullptr;  // int64 [n] absolute position of each row
    float* const* kv = nullptr;          // [n_layer, n] each row's cache of that layer (F32 [cap, D])
  } rows_;
  cuda::PinnedMemory meta_host_;     // the step's row metadata, staged (layout: StepLayout)
  cuda::PinnedMemory offsets_host_;  // int32 [E_max + 1] the last routing's expert offsets
  // With an MLP placement (opts.mlp_placement): the executors' side, and per layer with remote experts
  // the W1/W2 pointer lists with nullptr where an executor runs the expert (empty for other layers).
  std::unique_ptr<CudaExecutorBridge> bridge_;
  // With a trace sink: the step's rows on the host (sequence, position, token) and pinned room for one
  // block's routing (int32 ids and F32 gates, [max_step_tokens, max k] each).
  struct TraceRows {
    std::vector<int32_t> seq, tokens;
    std::vector<int64_t> pos;
    cuda::PinnedMemory ids, gates;
  };
  std::unique_ptr<TraceRows> trace_;
  std::vector<std::vector<const void*>> split_w1_, split_w2_;

  std::vector<cuda::DeviceMemory> caches_;  // slot -> F32 [n_layer, max_context, D], kept when freed
  std::vector<int64_t> lengths_;            // slot -> tokens cached
  std::vector<bool> live_;                  // slot -> holds a sequence
};

}  // namespace brickrt
