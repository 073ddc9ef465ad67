// CudaSession's tracing (brick run --trace on a GPU): each block's routing, copied back, for the sink.
#include "bricks/cuda/cuda_session.h"

namespace brickrt {

Status CudaSession::TraceBlock(size_t l, bool attention, int64_t n, int k,
                               std::chrono::steady_clock::time_point start) {
  if (trace_ == nullptr) return Status::Ok();
  TraceRows& t = *trace_;
  const Layer& layer = model_->cpu().layers()[l];
  // The routing is still in the step buffers (Route wrote ids and gates [n, k]); CopyToHost waits for the
  // whole block, which is what the block time should include.
  const size_t bytes = static_cast<size_t>(n * k) * 4;
  BRICK_RETURN_IF_ERROR(cuda::CopyToHost(t.ids.data(), RoutedIds(), bytes, stream_.get()));
  BRICK_RETURN_IF_ERROR(cuda::CopyToHost(t.gates.data(), RoutedGates(), bytes, stream_.get()));
  BlockTrace b;
  b.layer = static_cast<int64_t>(l);
  b.attention = attention;
  b.n = n;
  b.k = k;
  b.seq = t.seq.data();
  b.pos = t.pos.data();
  b.tokens = t.tokens.data();
  b.slots = t.ids.as<int32_t>();
  b.gates = t.gates.as<float>();
  b.ids = attention ? &layer.attn_ids : &layer.mlp_ids;
  if (!attention && bridge_ != nullptr && bridge_->AnyRemote(static_cast<int64_t>(l)))
    b.owner = &bridge_->owner(static_cast<int64_t>(l));
  b.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  opts_.trace->OnBlock(b);
  return Status::Ok();
}

}  // namespace brickrt
