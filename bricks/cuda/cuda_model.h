// CudaModel: every weight of a built CPU Model uploaded once into one device allocation, laid out for
// the kernels/cuda API (matrices row-major [in, out], transposed = false). Immutable; shared by the
// CUDA sessions that run it (bricks/cuda/cuda_session.h).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "bricks/executor.h"
#include "bricks/model.h"
#include "core/dtype.h"
#include "core/status.h"
#include "kernels/cuda/matmul.h"
#include "kernels/cuda/memory.h"

namespace brickrt {

// All pointers below are device memory inside the model's arena.
struct CudaNorm {
  const float* weight = nullptr;  // F32 [D] (widened at load, as the CPU Norm holds it)
  const float* bias = nullptr;    // F32 [D]
  float eps = 1e-5f;
};

// x·W1 + b1 → erf GELU → ·W2 → softmax → top-k (spec §2.3).
struct CudaRouter {
  const void* w1 = nullptr;   // dtype [D, G]
  const float* b1 = nullptr;  // F32 [G]
  const void* w2 = nullptr;   // dtype [G, E] (kept experts only)
  int64_t n_experts = 0;      // E
};

// One LoRA delta on a projection (bricks/lora.h): y += multiplier · (x·A)·B.
struct CudaLoraDelta {
  const void* a = nullptr;  // a_dtype [in, r]: Aᵀ, the lora's storage dtype
  DType a_dtype = DType::kF32;
  const void* b = nullptr;  // F32 [r, out]: Bᵀ, widened as the CPU holds it
  int64_t in = 0, rank = 0, out = 0;
  float multiplier = 0;  // scale · alpha / r
};
using CudaLoras = std::vector<CudaLoraDelta>;  // usually empty; several on one projection sum

// y F32 [M, out] += Σ multiplier·(x F32 [M, in]·A)·B over `loras` (bricks/lora.h's AddLoras on the GPU),
// all device: t F32 [M, max rank] and matmul scratch (MatmulScratchBytes(M, in, the A dtypes)) are the
// caller's. Enqueued on `stream`.
Status AddLorasCuda(const cuda::CublasHandle& cublas, const CudaLoras& loras, const float* x, int64_t M, float* y,
                    float* t, void* matmul_scratch, cuda::CudaStream stream);

struct CudaLayer {
  CudaNorm ln1;
  CudaRouter attn_router;
  std::vector<const void*> wq;              // [kept E_a] dtype [D, A]; host array of device pointers
  std::vector<const void*> wo;              // [kept E_a] dtype [A, D]
  std::vector<CudaLoras> wq_lora, wo_lora;  // [kept E_a]
  CudaNorm ln2;
  CudaRouter mlp_router;
  std::vector<const void*> w1;              // [kept E_m] dtype [D, F]
  std::vector<const void*> w2;              // [kept E_m] dtype [F, D]
  std::vector<CudaLoras> w1_lora, w2_lora;  // [kept E_m]
  // The expert pointers above again as device arrays ([kept E] device pointers each), for kernels that
  // find each pair's expert on the GPU (no host synchronization to size per-expert GEMMs).
  const void* const* wq_table = nullptr;
  const void* const* wo_table = nullptr;
  const void* const* w1_table = nullptr;
  const void* const* w2_table = nullptr;
};

class CudaModel {
 public:
  // Makes `device` current, allocates one arena of PlannedBytes(*model) and copies every weight into it
  // (matrices unpacked to row-major [K, N] in pinned host staging, two buffers so unpacking one overlaps
  // the copy of the other), then waits for the copies. LoRA plugins attached on the fly come along as
  // their two factors (CudaLoraDelta). Errors: Unsupported for base matrices of mixed dtypes; the
  // device's errors (Unavailable without a GPU, Internal for an allocation that fails) with context.
  //
  // elsewhere: the MLP placement of a session that will run this model with some experts on executors
  // (CudaSession::Create checks it): those experts are not uploaded (null in w1/w2 and the tables).
  static Result<std::shared_ptr<const CudaModel>> Upload(std::shared_ptr<const Model> model, int device,
                                                         const MlpPlacement* elsewhere = nullptr);

  // Device bytes Upload allocates for `model`: every weight, each rounded up to DeviceArena::kAlign.
  static int64_t PlannedBytes(const Model& model, const MlpPlacement* elsewhere = nullptr);
  // Whether layer l's kept MLP slot e was uploaded (not placed elsewhere at Upload).
  bool HasMlpExpert(size_t l, size_t e) const { return layers_[l].w1[e] != nullptr; }

  const Model& cpu() const { return *model_; }
  const ModelConfig& config() const { return model_->config(); }
  int device() const { return device_; }
  DType dtype() const { return dtype_; }                // of the embedding table and every matrix
  const void* embedding() const { return embedding_; }  // dtype [V, D]
  const std::vector<CudaLayer>& layers() const { return layers_; }
  const CudaNorm& ln_f() const { return ln_f_; }
  const void* lm_head() const { return lm_head_; }  // dtype [D, V]
  const CudaLoras& lm_head_lora() const { return lm_head_lora_; }
  // The dtype MatmulCuda's scratch must be sized for: a 16-bit one when any matrix (base or a lora's
  // A) is F16/BF16, else F32 (no scratch needed).
  DType scratch_dtype() const { return scratch_dtype_; }
  int64_t device_bytes() const { return static_cast<int64_t>(arena_.capacity()); }

  ~CudaModel();  // frees the arena on its device (made current first)
  CudaModel(const CudaModel&) = delete;
  CudaModel& operator=(const CudaModel&) = delete;

 private:
  struct Piece;
  CudaModel() = default;
  // Every weight as one Piece, each naming where its device pointer goes in *this. Sizes the layer
  // vectors first, so the pointers stay valid.
  std::vector<Piece> Plan();

  std::shared_ptr<const Model> model_;
  std::vector<std::vector<int32_t>> elsewhere_;  // Upload's placement owners (copied; empty: all here)
  int device_ = 0;
  DType dtype_ = DType::kF32;
  const void* embedding_ = nullptr;
  std::vector<CudaLayer> layers_;
  CudaNorm ln_f_;
  const void* lm_head_ = nullptr;
  CudaLoras lm_head_lora_;
  DType scratch_dtype_ = DType::kF32;
  cuda::DeviceArena arena_;  // owns the one allocation every pointer above points into
};

}  // namespace brickrt
