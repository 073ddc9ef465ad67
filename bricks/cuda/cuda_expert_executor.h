// MLP experts on a local GPU as an ExpertExecutor (bricks/executor.h): the MLP block hands it every row
// routed to its experts in one call per layer and step, exactly like a remote node, and runs the CPU
// experts while the GPU works. This is how a submodel mixes CPU and GPU bricks: a placement rule
// `{match: "L*.mlp.E*", on: cuda:0}` puts those experts here and everything else stays on the CPU.
//
// Weights are uploaded once, at Create, into one device allocation (a DeviceArena). A call copies its
// rows into pinned memory and on to the GPU, runs y = gelu_tanh(x·W1)·W2 per expert on the executor's
// own stream (cuBLAS GEMMs, F32 accumulation), and copies the outputs back asynchronously; Finish waits
// for the stream. The activation buffers grow to the largest call once and are reused after that, so a
// decode loop does not allocate.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "bricks/cuda/cuda_model.h"
#include "bricks/executor.h"
#include "bricks/model.h"
#include "core/status.h"
#include "kernels/cuda/matmul.h"
#include "kernels/cuda/memory.h"

namespace brickrt {

class CudaExpertExecutor final : public ExpertExecutor {
 public:
  // Uploads the MLP experts of `model` listed in `slots` ([layer] -> kept slots, i.e. indices into
  // Layer::mlp; empty or missing layers upload nothing) to CUDA device `device`, with the LoRA deltas
  // attached to them (applied after each projection, as MlpExpert::Forward). Errors: InvalidArgument
  // for a layer or slot the model does not have; Unavailable without such a device; device errors (out
  // of memory, ...) with the CUDA message.
  static Result<std::unique_ptr<CudaExpertExecutor>> Create(std::shared_ptr<const Model> model,
                                                            const std::vector<std::vector<int64_t>>& slots, int device);
  ~CudaExpertExecutor() override;

  Status Start(const ExpertCall& call) override;
  Status Finish() override;
  bool AppliesLoras() const override { return true; }

  int device() const { return device_; }
  int64_t experts() const { return n_experts_; }
  // Device bytes of the uploaded weights, and of the activation buffers as they are now.
  int64_t weight_bytes() const { return static_cast<int64_t>(weights_.used()); }
  int64_t activation_bytes() const { return static_cast<int64_t>(activations_.capacity()); }

 private:
  struct DeviceExpert {
    int64_t id = -1;           // original expert index (ExpertCall::experts)
    const void* w1 = nullptr;  // `dtype` [D, F], device
    const void* w2 = nullptr;  // `dtype` [F, D], device
    DType dtype = DType::kF32;
    CudaLoras w1_lora, w2_lora;  // LoRA deltas on its projections (usually none)
  };
  CudaExpertExecutor() = default;

  // The device copy of layer `layer`'s expert `id`, or nullptr.
  const DeviceExpert* Find(int64_t layer, int64_t id) const;
  // Makes the activation buffers hold calls of `rows` rows (only grows; reallocates outside any call).
  Status Reserve(int64_t rows);
  Status Run(const ExpertCall& call, int64_t rows);

  std::shared_ptr<const Model> model_;
  int device_ = 0;
  int64_t D_ = 0, F_ = 0, n_experts_ = 0;
  std::vector<std::vector<DeviceExpert>> layers_;  // [layer] -> uploaded experts, ascending id

  cuda::Stream stream_;
  cuda::CublasHandle cublas_;
  cuda::DeviceArena weights_;

  // Activations for calls of up to reserved_rows_ rows.
  int64_t reserved_rows_ = 0;
  cuda::DeviceArena activations_;
  float* in_ = nullptr;                    // F32 [rows, D]
  float* mid_ = nullptr;                   // F32 [rows, F]
  float* out_ = nullptr;                   // F32 [rows, D]
  void* scratch_ = nullptr;                // MatmulScratchBytes(rows, max(D, F), scratch_dtype_)
  float* lora_ = nullptr;                  // F32 [rows, max LoRA rank]: x·A of one delta (none without LoRAs)
  int64_t lora_rank_ = 0;                  // the largest rank of the uploaded deltas
  DType scratch_dtype_ = DType::kF32;      // a 16-bit dtype when any uploaded matrix is one
  cuda::PinnedMemory host_in_, host_out_;  // F32 [rows, D] each

  // The call in flight: where its outputs go once the stream is done.
  float* pending_out_ = nullptr;
  int64_t pending_rows_ = 0;
  bool in_flight_ = false;
};

}  // namespace brickrt
