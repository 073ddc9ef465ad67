// CudaSession's MLP block for a layer some of whose experts run on executors (nodes, the CPU): the GPU
// side of bricks/blocks.cpp's RunMlpBlock with a placement.
#include <algorithm>

#include "bricks/cuda/cuda_session.h"

namespace brickrt {

Status CudaSession::SplitMlp(size_t l, int64_t n, std::chrono::steady_clock::time_point start) {
  const auto layer = static_cast<int64_t>(l);
  const CudaLayer& gpu = model_->layers()[l];
  const int64_t E = gpu.mlp_router.n_experts;
  const float* bias = nullptr;
  BRICK_ASSIGN_OR_RETURN(int64_t routable, bridge_->Availability(layer, E, &bias, stream_));
  // Each round leaves out at least one more expert, so this ends.
  while (true) {
    const int k = static_cast<int>(std::min<int64_t>(model_->config().k_mlp, routable));
    if (k == 0) return TraceBlock(l, /*attention=*/false, n, 0, start);  // all unreachable: the block adds nothing
    BRICK_RETURN_IF_ERROR(Route(gpu.mlp_router, k, n, bias));
    Status call = bridge_->Start(layer, offsets_host_.as<int32_t>(), PairIn(), stream_);
    if (call.ok()) {
      // The GPU's own experts while the executors work; their pairs' outputs are left untouched.
      const Status gpu_status = Experts(l, /*attention=*/false, n, k, split_w1_[l].data(), split_w2_[l].data());
      call = bridge_->Finish(PairOut(), stream_);  // always: no call may stay in flight
      BRICK_RETURN_IF_ERROR(gpu_status);           // a GPU error fails the step whatever the executors did
    }
    if (call.ok()) {
      BRICK_RETURN_IF_ERROR(Combine(n, k));
      return TraceBlock(l, /*attention=*/false, n, k, start);
    }
    // h is untouched so far: when the failed executor now says it is unavailable, route again without it.
    BRICK_ASSIGN_OR_RETURN(const int64_t now, bridge_->Availability(layer, E, &bias, stream_));
    if (now >= routable) return call;  // no executor stepped aside: the error fails the step
    routable = now;
  }
}

}  // namespace brickrt
