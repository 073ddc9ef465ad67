// CudaExecutorBridge: pair rows GPU -> pinned host -> executors -> pinned host -> GPU.
#include "bricks/cuda/cuda_executor_bridge.h"

#include <algorithm>
#include <limits>

#include "bricks/step_validation.h"

namespace brickrt {

Result<std::unique_ptr<CudaExecutorBridge>> CudaExecutorBridge::Create(const Model& model,
                                                                       const MlpPlacement& placement,
                                                                       int64_t max_pairs) {
  BRICK_RETURN_IF_ERROR(ValidatePlacement(model, placement));
  // An executor that computes base experts only (a node) would drop an expert's LoRA.
  for (size_t l = 0; l < placement.owner.size(); ++l) {
    for (size_t e = 0; e < placement.owner[l].size(); ++e) {
      const int32_t o = placement.owner[l][e];
      if (o != MlpPlacement::kLocal && !placement.executors[static_cast<size_t>(o)]->AppliesLoras() &&
          model.layers()[l].mlp[e]->lora_rank() > 0)
        return InvalidArgument("L" + std::to_string(l) + ".mlp.E" + std::to_string(model.layers()[l].mlp_ids[e]) +
                               " carries a LoRA, which an executor would not apply; keep it on the GPU");
    }
  }
  std::unique_ptr<CudaExecutorBridge> b(new CudaExecutorBridge());
  b->D_ = model.config().n_embd;
  for (const Layer& l : model.layers()) b->E_max_ = std::max<int64_t>(b->E_max_, static_cast<int64_t>(l.mlp.size()));
  b->max_pairs_ = max_pairs;
  b->placement_ = placement;
  b->placement_.owner.resize(model.layers().size());  // layers past the list run on the GPU
  const size_t rows = static_cast<size_t>(max_pairs * b->D_) * sizeof(float);
  const size_t bias = static_cast<size_t>(static_cast<int64_t>(model.layers().size()) * b->E_max_) * sizeof(float);
  BRICK_ASSIGN_OR_RETURN(b->rows_in_, cuda::PinnedMemory::Allocate(rows));
  BRICK_ASSIGN_OR_RETURN(b->rows_out_, cuda::PinnedMemory::Allocate(rows));
  BRICK_ASSIGN_OR_RETURN(b->bias_host_, cuda::PinnedMemory::Allocate(bias));
  BRICK_ASSIGN_OR_RETURN(b->bias_, cuda::DeviceMemory::Allocate(bias));
  const size_t executors = placement.executors.size();
  b->experts_.resize(executors);
  b->counts_.resize(executors);
  for (size_t ex = 0; ex < executors; ++ex) {
    b->experts_[ex].reserve(static_cast<size_t>(b->E_max_));
    b->counts_[ex].reserve(static_cast<size_t>(b->E_max_));
  }
  b->started_.assign(executors, 0);
  b->first_row_.assign(executors, 0);
  b->available_.assign(executors, 0);
  b->slices_.reserve(static_cast<size_t>(b->E_max_));
  b->model_ = &model;
  return b;
}

Result<int64_t> CudaExecutorBridge::Availability(int64_t layer, int64_t E, const float** bias,
                                                 const cuda::Stream& stream) {
  *bias = nullptr;
  constexpr uint8_t kUnasked = 2;
  std::fill(available_.begin(), available_.end(), kUnasked);
  const std::vector<int32_t>& own = owner(layer);
  float* row = bias_host_.as<float>() + layer * E_max_;
  int64_t routable = 0;
  for (int64_t e = 0; e < E; ++e) {
    const int32_t o = own[static_cast<size_t>(e)];
    bool skip = false;
    if (o != MlpPlacement::kLocal) {
      uint8_t& a = available_[static_cast<size_t>(o)];
      if (a == kUnasked) a = placement_.executors[static_cast<size_t>(o)]->Available() ? 1 : 0;
      skip = a == 0;
    }
    // −inf leaves the softmax exactly as the CPU router's skip mask does (Router::Route).
    row[e] = skip ? -std::numeric_limits<float>::infinity() : 0.0f;
    routable += !skip;
  }
  if (routable == E) return routable;
  float* dst = bias_.as<float>() + layer * E_max_;
  BRICK_RETURN_IF_ERROR(cuda::CopyToDevice(dst, row, static_cast<size_t>(E) * sizeof(float), stream.get()));
  *bias = dst;
  return routable;
}

Status CudaExecutorBridge::Start(int64_t layer, const int32_t* offsets, const float* pair_in,
                                 const cuda::Stream& stream) {
  const std::vector<int32_t>& own = owner(layer);
  const Layer& cpu = model_->layers()[static_cast<size_t>(layer)];
  const int64_t E = static_cast<int64_t>(own.size());
  slices_.clear();
  // Executor after executor, each one's experts ascending (ExpertCall: expert-major, in the order of
  // `experts`), so the pinned rows of one call are contiguous from first_row_[ex].
  int64_t host_row = 0;
  for (size_t ex = 0; ex < placement_.executors.size(); ++ex) {
    experts_[ex].clear();
    counts_[ex].clear();
    first_row_[ex] = host_row;
    for (int64_t e = 0; e < E; ++e) {
      const int32_t count = offsets[e + 1] - offsets[e];
      if (count == 0 || own[static_cast<size_t>(e)] != static_cast<int32_t>(ex)) continue;
      if (host_row + count > max_pairs_) return Internal("CudaExecutorBridge: more pairs than the session planned for");
      experts_[ex].push_back(cpu.mlp_ids[static_cast<size_t>(e)]);
      counts_[ex].push_back(count);
      slices_.push_back({offsets[e], count, host_row});
      BRICK_RETURN_IF_ERROR(cuda::CopyToHostAsync(rows_in_.as<float>() + host_row * D_, pair_in + offsets[e] * D_,
                                                  Bytes(count), stream.get()));
      host_row += count;
    }
  }
  if (slices_.empty()) return Status::Ok();
  // The block's one extra synchronization: the rows are in pinned memory, and every earlier copy out of
  // rows_out_ (the previous layer's outputs) has finished, so the executors may write it again.
  BRICK_RETURN_IF_ERROR(stream.Synchronize());
  for (size_t ex = 0; ex < placement_.executors.size(); ++ex) {
    if (experts_[ex].empty()) continue;
    const ExpertCall call{layer,
                          D_,
                          experts_[ex],
                          counts_[ex],
                          rows_in_.as<float>() + first_row_[ex] * D_,
                          rows_out_.as<float>() + first_row_[ex] * D_};
    Status st = placement_.executors[ex]->Start(call);
    if (!st.ok()) {
      (void)FinishStarted();  // no call is left in flight; the Start error is the one to report
      return st;
    }
    started_[ex] = 1;
  }
  return Status::Ok();
}

Status CudaExecutorBridge::FinishStarted() {
  Status first = Status::Ok();
  for (size_t ex = 0; ex < placement_.executors.size(); ++ex) {
    if (!started_[ex]) continue;
    started_[ex] = 0;
    Status st = placement_.executors[ex]->Finish();
    if (first.ok() && !st.ok()) first = std::move(st);
  }
  return first;
}

Status CudaExecutorBridge::Finish(float* pair_out, const cuda::Stream& stream) {
  BRICK_RETURN_IF_ERROR(FinishStarted());
  for (const Slice& s : slices_) {
    BRICK_RETURN_IF_ERROR(cuda::CopyToDevice(pair_out + static_cast<int64_t>(s.first_pair) * D_,
                                             rows_out_.as<float>() + s.host_row * D_, Bytes(s.count), stream.get()));
  }
  return Status::Ok();
}

}  // namespace brickrt
