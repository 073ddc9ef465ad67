// CudaExpertExecutor: upload once, then one stream of GEMMs per call.
#include "bricks/cuda/cuda_expert_executor.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "kernels/cuda/device.h"
#include "kernels/cuda/gelu.h"

namespace brickrt {
namespace {

std::string Where(int device) { return "cuda:" + std::to_string(device); }

// Bytes of one unpacked weight matrix.
size_t MatrixBytes(const kernels::PackedMatrix& w) { return static_cast<size_t>(w.K() * w.N()) * DTypeSize(w.dtype()); }

}  // namespace

Result<std::unique_ptr<CudaExpertExecutor>> CudaExpertExecutor::Create(std::shared_ptr<const Model> model,
                                                                       const std::vector<std::vector<int64_t>>& slots,
                                                                       int device) {
  if (model == nullptr) return InvalidArgument("CudaExpertExecutor needs a model");
  const auto& layers = model->layers();
  if (slots.size() > layers.size())
    return InvalidArgument("GPU placement lists " + std::to_string(slots.size()) + " layers, the model has " +
                           std::to_string(layers.size()));
  // Check everything before touching the device, and plan the one weight allocation.
  size_t weight_bytes = 0;
  for (size_t l = 0; l < slots.size(); ++l) {
    for (int64_t s : slots[l]) {
      if (s < 0 || s >= static_cast<int64_t>(layers[l].mlp.size()))
        return InvalidArgument("GPU placement names slot " + std::to_string(s) + " of layer " + std::to_string(l) +
                               ", which keeps " + std::to_string(layers[l].mlp.size()) + " MLP experts");
      const MlpExpert& e = *layers[l].mlp[static_cast<size_t>(s)];
      weight_bytes += cuda::DeviceArena::Round(MatrixBytes(e.w1())) + cuda::DeviceArena::Round(MatrixBytes(e.w2()));
      for (const LoraDeltas* deltas : {&e.w1_lora(), &e.w2_lora()})
        for (const auto& d : *deltas)
          weight_bytes += cuda::DeviceArena::Round(MatrixBytes(d->a())) + cuda::DeviceArena::Round(MatrixBytes(d->b()));
    }
  }
  BRICK_RETURN_IF_ERROR(cuda::UseDevice(device).WithContext(Where(device)));

  std::unique_ptr<CudaExpertExecutor> ex(new CudaExpertExecutor());
  ex->model_ = model;
  ex->device_ = device;
  ex->D_ = model->config().n_embd;
  ex->F_ = model->config().ffd_hidden;
  BRICK_ASSIGN_OR_RETURN(ex->stream_, cuda::Stream::Create());
  BRICK_ASSIGN_OR_RETURN(ex->cublas_, cuda::CublasHandle::Create());
  auto memory = cuda::DeviceMemory::Allocate(weight_bytes);
  if (!memory.ok())
    return memory.status().WithContext(Where(device) + ": " + std::to_string(weight_bytes >> 20) +
                                       " MiB for the MLP experts placed there");
  ex->weights_ = cuda::DeviceArena(std::move(memory).value());

  // Upload matrix by matrix through one host staging buffer (bit-exact row-major [K, N], see
  // PackedMatrix::Unpack), synchronizing after each so the buffer can be reused.
  std::vector<uint8_t> staging;
  auto upload = [&](const kernels::PackedMatrix& w) -> Result<const void*> {
    staging.resize(MatrixBytes(w));
    w.Unpack(staging.data());
    void* dst = ex->weights_.Carve(staging.size());
    if (dst == nullptr) return Internal("CudaExpertExecutor: weight arena planned too small");
    BRICK_RETURN_IF_ERROR(cuda::CopyToDevice(dst, staging.data(), staging.size(), ex->stream_.get()));
    BRICK_RETURN_IF_ERROR(ex->stream_.Synchronize());
    return static_cast<const void*>(dst);
  };
  ex->layers_.resize(slots.size());
  for (size_t l = 0; l < slots.size(); ++l) {
    std::vector<int64_t> sorted = slots[l];
    std::sort(sorted.begin(), sorted.end());
    sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
    for (int64_t s : sorted) {
      const MlpExpert& e = *layers[l].mlp[static_cast<size_t>(s)];
      DeviceExpert d;
      d.id = layers[l].mlp_ids[static_cast<size_t>(s)];
      d.dtype = e.w1().dtype();
      BRICK_ASSIGN_OR_RETURN(d.w1, upload(e.w1()));
      BRICK_ASSIGN_OR_RETURN(d.w2, upload(e.w2()));
      if (d.dtype != DType::kF32) ex->scratch_dtype_ = d.dtype;
      for (auto [deltas, dst] : {std::pair{&e.w1_lora(), &d.w1_lora}, std::pair{&e.w2_lora(), &d.w2_lora}}) {
        for (const auto& delta : *deltas) {
          CudaLoraDelta g;
          BRICK_ASSIGN_OR_RETURN(g.a, upload(delta->a()));
          BRICK_ASSIGN_OR_RETURN(g.b, upload(delta->b()));
          g.a_dtype = delta->a().dtype();
          g.in = delta->in(), g.rank = delta->rank(), g.out = delta->out();
          g.multiplier = static_cast<float>(delta->multiplier());
          if (g.a_dtype != DType::kF32) ex->scratch_dtype_ = g.a_dtype;
          ex->lora_rank_ = std::max(ex->lora_rank_, g.rank);
          dst->push_back(g);
        }
      }
      if (e.w2().dtype() != d.dtype)
        return InvalidArgument("L" + std::to_string(l) + ".mlp.E" + std::to_string(d.id) +
                               ": w1 and w2 differ in dtype");
      ex->layers_[l].push_back(d);  // mlp_ids ascend with the slot, so ids stay sorted
      ++ex->n_experts_;
    }
  }
  return ex;
}

CudaExpertExecutor::~CudaExpertExecutor() {
  // The members free device memory, a stream and a cuBLAS handle of device_: make it current first (the
  // destroying thread may have another one current).
  (void)cuda::UseDevice(device_);
  // A call still in flight writes into buffers freed below: wait for it first.
  if (in_flight_) (void)stream_.Synchronize();
}

const CudaExpertExecutor::DeviceExpert* CudaExpertExecutor::Find(int64_t layer, int64_t id) const {
  if (layer < 0 || layer >= static_cast<int64_t>(layers_.size())) return nullptr;
  const auto& experts = layers_[static_cast<size_t>(layer)];
  const auto it =
      std::lower_bound(experts.begin(), experts.end(), id, [](const DeviceExpert& e, int64_t v) { return e.id < v; });
  return it != experts.end() && it->id == id ? &*it : nullptr;
}

Status CudaExpertExecutor::Reserve(int64_t rows) {
  if (rows <= reserved_rows_) return Status::Ok();
  // Grow geometrically so a run of ever larger prefills reallocates O(log) times.
  const int64_t n = std::max(rows, 2 * reserved_rows_);
  const size_t scratch = cuda::MatmulScratchBytes(n, std::max(D_, F_), scratch_dtype_);
  const size_t row_bytes = static_cast<size_t>(n * D_) * sizeof(float);
  const size_t mid_bytes = static_cast<size_t>(n * F_) * sizeof(float);
  const size_t lora_bytes = static_cast<size_t>(n * lora_rank_) * sizeof(float);
  using cuda::DeviceArena;
  const size_t total = 2 * DeviceArena::Round(row_bytes) + DeviceArena::Round(mid_bytes) + DeviceArena::Round(scratch) +
                       DeviceArena::Round(lora_bytes);
  // Release the old buffers first: the GPU may not have room for both.
  activations_ = DeviceArena();
  host_in_ = cuda::PinnedMemory();
  host_out_ = cuda::PinnedMemory();
  reserved_rows_ = 0;
  auto memory = cuda::DeviceMemory::Allocate(total);
  if (!memory.ok())
    return memory.status().WithContext(Where(device_) + ": activations for " + std::to_string(n) + " rows");
  activations_ = DeviceArena(std::move(memory).value());
  in_ = activations_.Carve<float>(static_cast<size_t>(n * D_));
  out_ = activations_.Carve<float>(static_cast<size_t>(n * D_));
  mid_ = activations_.Carve<float>(static_cast<size_t>(n * F_));
  scratch_ = activations_.Carve(scratch);                                  // nullptr for F32 weights, which need none
  lora_ = activations_.Carve<float>(static_cast<size_t>(n * lora_rank_));  // nullptr without LoRAs
  BRICK_ASSIGN_OR_RETURN(host_in_, cuda::PinnedMemory::Allocate(row_bytes));
  BRICK_ASSIGN_OR_RETURN(host_out_, cuda::PinnedMemory::Allocate(row_bytes));
  reserved_rows_ = n;
  return Status::Ok();
}

Status CudaExpertExecutor::Start(const ExpertCall& call) {
  if (in_flight_) return Internal("CudaExpertExecutor: a call is already in flight");
  if (call.width != D_)
    return InvalidArgument("GPU expert call of width " + std::to_string(call.width) + ", the model's is " +
                           std::to_string(D_));
  if (call.experts.size() != call.counts.size()) return InvalidArgument("GPU expert call: experts and counts differ");
  int64_t rows = 0;
  for (size_t i = 0; i < call.experts.size(); ++i) {
    if (Find(call.layer, call.experts[i]) == nullptr)
      return InvalidArgument("L" + std::to_string(call.layer) + ".mlp.E" + std::to_string(call.experts[i]) +
                             " is not on " + Where(device_));
    if (call.counts[i] < 1) return InvalidArgument("GPU expert call with an empty expert");
    rows += call.counts[i];
  }
  if (rows == 0) return InvalidArgument("GPU expert call without rows");
  BRICK_RETURN_IF_ERROR(cuda::UseDevice(device_));
  BRICK_RETURN_IF_ERROR(Reserve(rows));
  Status st = Run(call, rows);
  if (!st.ok()) {
    (void)stream_.Synchronize();  // nothing of a failed call may still run when the caller moves on
    return st.WithContext(Where(device_));
  }
  pending_out_ = call.out;
  pending_rows_ = rows;
  in_flight_ = true;
  return Status::Ok();
}

Status CudaExpertExecutor::Run(const ExpertCall& call, int64_t rows) {
  void* const stream = stream_.get();
  const size_t bytes = static_cast<size_t>(rows * D_) * sizeof(float);
  std::memcpy(host_in_.data(), call.rows, bytes);  // pinned, so the copy below is truly asynchronous
  BRICK_RETURN_IF_ERROR(cuda::CopyToDevice(in_, host_in_.data(), bytes, stream));
  // The experts' rows are contiguous (expert-major): y = x·W per expert on its slice, for W1 and then
  // W2, with the GELU over every row at once between the two sweeps.
  auto sweep = [&](const float* x, int64_t K, bool second, float* y, int64_t N) -> Status {
    int64_t row = 0;
    for (size_t i = 0; i < call.experts.size(); ++i) {
      const DeviceExpert& e = *Find(call.layer, call.experts[i]);
      BRICK_RETURN_IF_ERROR(cuda::MatmulCuda(cublas_, x + row * K, call.counts[i], K, second ? e.w2 : e.w1, e.dtype, N,
                                             /*w_transposed=*/false, y + row * N, scratch_, stream));
      // Its LoRA deltas act on the projection's output (before the GELU for W1), as MlpExpert::Forward.
      BRICK_RETURN_IF_ERROR(AddLorasCuda(cublas_, second ? e.w2_lora : e.w1_lora, x + row * K, call.counts[i],
                                         y + row * N, lora_, scratch_, stream));
      row += call.counts[i];
    }
    return Status::Ok();
  };
  BRICK_RETURN_IF_ERROR(sweep(in_, D_, /*second=*/false, mid_, F_));
  BRICK_RETURN_IF_ERROR(cuda::GeluTanhCuda(mid_, rows * F_, stream));
  BRICK_RETURN_IF_ERROR(sweep(mid_, F_, /*second=*/true, out_, D_));
  return cuda::CopyToHostAsync(host_out_.data(), out_, bytes, stream);
}

Status CudaExpertExecutor::Finish() {
  if (!in_flight_) return Internal("CudaExpertExecutor: Finish without a started call");
  in_flight_ = false;
  // The context string only on failure: Finish runs once per layer and step.
  if (Status st = stream_.Synchronize(); !st.ok()) return st.WithContext(Where(device_));
  std::memcpy(pending_out_, host_out_.data(), static_cast<size_t>(pending_rows_ * D_) * sizeof(float));
  return Status::Ok();
}

}  // namespace brickrt
