// CreateSession: CPU Session or, for a model placed on a GPU, CudaSession.
#include "node/session_factory.h"

#if BRICK_HAVE_CUDA
#include "bricks/cuda/cuda_model.h"
#include "bricks/cuda/cuda_session.h"
#endif

namespace brickrt {

Result<std::unique_ptr<ModelSession>> CreateSession(std::shared_ptr<const Model> model, const SplitPlan* plan,
                                                    SessionOptions opts, ThreadPool* pool) {
  if (plan != nullptr && !plan->executors.empty()) opts.mlp_placement = &plan->placement;
  if (plan == nullptr || !plan->device.is_cuda()) {
    BRICK_ASSIGN_OR_RETURN(std::unique_ptr<Session> session, Session::Create(std::move(model), opts, pool));
    return std::unique_ptr<ModelSession>(std::move(session));
  }
  const std::string where = plan->device.ToString();
#if BRICK_HAVE_CUDA
  // Experts the plan sends elsewhere (nodes, the CPU) stay off the GPU.
  auto gpu = CudaModel::Upload(std::move(model), plan->device.index, opts.mlp_placement);
  if (!gpu.ok()) return gpu.status().WithContext(where);
  auto session = CudaSession::Create(std::move(gpu).value(), opts);
  if (!session.ok()) return session.status().WithContext(where);
  return std::unique_ptr<ModelSession>(std::move(session).value());
#else
  (void)pool;
  return Unsupported("the model is placed on " + where +
                     ", but this brick was built without CUDA (configure with -DBRICK_CUDA=ON and nvcc installed)");
#endif
}

}  // namespace brickrt
