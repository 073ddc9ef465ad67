// MLP experts of a model on a GPU that run elsewhere (issue #8): the experts an MlpPlacement gives to
// ExpertExecutors — a node over ZeroMQ, or anything else that computes an expert's rows — while the
// rest of the model runs in a CudaSession. Per layer and step: the executors' pair rows come back from
// the GPU with one synchronization, each executor gets its one call, the GPU runs its own experts
// meanwhile, and the outputs go back into their pair rows before the gated combine. The combine order
// (ascending expert) is the all-GPU one, so the answer differs only by each expert's own arithmetic.
// Executors that are not Available() leave the routing as on the CPU (bricks/blocks.h): their experts'
// router logits become −inf through a per-layer bias.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "bricks/executor.h"
#include "bricks/model.h"
#include "core/status.h"
#include "kernels/cuda/memory.h"

namespace brickrt {

class CudaExecutorBridge {
 public:
  // Checks the placement against the model like Session::Create (owners per kept slot, executors that
  // exist) and allocates, for steps of up to max_pairs (token, expert) pairs: pinned rows in and out
  // [max_pairs, D] and the per-layer router biases (pinned [L, E_max] and device [L, E_max]). `model`
  // (the CPU model the GPU one was uploaded from: expert ids) and the executors must outlive the bridge.
  static Result<std::unique_ptr<CudaExecutorBridge>> Create(const Model& model, const MlpPlacement& placement,
                                                            int64_t max_pairs);

  // Whether some kept MLP expert of `layer` runs on an executor.
  bool AnyRemote(int64_t layer) const { return placement_.AnyRemote(layer); }
  // Executor index or MlpPlacement::kLocal (= on the GPU) per kept slot; empty for an all-GPU layer.
  const std::vector<int32_t>& owner(int64_t layer) const { return placement_.owner[static_cast<size_t>(layer)]; }

  // Asks each executor owning one of the layer's slots whether it takes calls now. Returns how many of
  // the layer's E kept slots stay routable; when that is fewer than E, *bias is a device F32 [E] (0, or
  // −inf for a slot left out) for the router logits, uploaded on `stream`; otherwise nullptr.
  Result<int64_t> Availability(int64_t layer, int64_t E, const float** bias, const cuda::Stream& stream);

  // After the layer's pairs are grouped by expert: slot e's pairs are rows [offsets[e], offsets[e+1])
  // of pair_in (device F32 [P, D], offsets on the host). Copies the rows of every executor-owned slot
  // into pinned memory (one synchronization of `stream`, none when the layer sends nothing) and
  // starts one call per executor that has rows. On an error no call is left in flight.
  Status Start(int64_t layer, const int32_t* offsets, const float* pair_in, const cuda::Stream& stream);
  // Waits for every started call (all are finished, even after one fails); then enqueues the copies of
  // each output into its rows of pair_out (device F32 [P, D]) on `stream`. Returns the first error.
  Status Finish(float* pair_out, const cuda::Stream& stream);

 private:
  CudaExecutorBridge() = default;
  // Finishes every started call; the first error.
  Status FinishStarted();
  size_t Bytes(int64_t rows) const { return static_cast<size_t>(rows * D_) * sizeof(float); }

  const Model* model_ = nullptr;
  MlpPlacement placement_;
  int64_t D_ = 0, E_max_ = 0, max_pairs_ = 0;
  cuda::PinnedMemory rows_in_, rows_out_;  // F32 [max_pairs, D] each, executor after executor
  cuda::PinnedMemory bias_host_;           // F32 [L, E_max]: one row per layer, so a pending upload is never rewritten
  cuda::DeviceMemory bias_;                // F32 [L, E_max]

  // An executor-owned slot's pairs this layer: rows [first_pair, +count) of the GPU's pair buffers,
  // rows [host_row, +count) of the pinned ones.
  struct Slice {
    int32_t first_pair = 0, count = 0;
    int64_t host_row = 0;
  };
  std::vector<std::vector<int64_t>> experts_;  // per executor: original expert ids of the call
  std::vector<std::vector<int32_t>> counts_;   // per executor: rows per expert
  std::vector<int64_t> first_row_;             // per executor: its call's first pinned row
  std::vector<uint8_t> started_;               // per executor: a call is in flight
  std::vector<Slice> slices_;                  // every executor-owned slot with pairs, this layer
  std::vector<uint8_t> available_;             // per executor, asked once per Availability
};

}  // namespace brickrt
