// MLP experts computed on this machine's CPU, on a worker thread of their own, as an ExpertExecutor
// (bricks/executor.h): for a model on a GPU whose placement keeps some MLP experts on the CPU
// (`{match: ..., on: cpu}`, e.g. a private expert kept off the GPU). The GPU session hands it a layer's
// rows in one call and runs its own experts while this thread computes; the outputs are those of the
// model's own expert objects (RunExpertCallLocally), as a node holding the same bricks computes them.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "bricks/executor.h"
#include "bricks/model.h"
#include "core/status.h"

namespace brickrt {

class CpuExpertExecutor final : public ExpertExecutor {
 public:
  explicit CpuExpertExecutor(std::shared_ptr<const Model> model);
  ~CpuExpertExecutor() override;  // waits for a call in flight, then ends the worker
  CpuExpertExecutor(const CpuExpertExecutor&) = delete;
  CpuExpertExecutor& operator=(const CpuExpertExecutor&) = delete;

  // Hands the call to the worker. Errors (at Finish): InvalidArgument for a layer beyond the model or an
  // expert the layer does not keep (RunExpertCallLocally). LoRA deltas on its experts are applied.
  Status Start(const ExpertCall& call) override;
  Status Finish() override;
  bool AppliesLoras() const override { return true; }

 private:
  void Loop();

  std::shared_ptr<const Model> model_;
  std::mutex mu_;
  std::condition_variable cv_;
  ExpertCall call_;
  bool pending_ = false;    // a call waits for the worker
  bool in_flight_ = false;  // started and not yet finished
  bool done_ = false;       // the worker finished the call
  bool stop_ = false;
  Status result_;
  std::vector<float> mid_;   // F32 [largest count, F]: grows to the largest call, then reused
  std::vector<float> lora_;  // F32 [largest count, the model's largest LoRA rank], likewise
  std::thread worker_;       // last: starts after every member above exists
};

}  // namespace brickrt
