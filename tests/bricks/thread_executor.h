// Shared by the split-execution tests (tests/bricks/split_test.cpp, tests/bricks_cuda/): an executor
// that computes its calls on a thread of its own with the model's expert objects, with failure
// injection, and a placement that spreads layers 0 and 2 over executors and this process.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <thread>
#include <vector>

#include "bricks/blocks.h"
#include "bricks/executor.h"
#include "bricks/model.h"

namespace brickrt::testing {

// Runs the experts of the call on its own thread with the model's own expert objects (what a node
// holding the same bricks computes), recording every call.
class ThreadExecutor : public ExpertExecutor {
 public:
  explicit ThreadExecutor(std::shared_ptr<const Model> model) : model_(std::move(model)) {}
  ~ThreadExecutor() override {
    if (worker_.joinable()) worker_.join();
  }

  Status Start(const ExpertCall& call) override {
    EXPECT_FALSE(worker_.joinable()) << "a second call started before Finish";
    calls.push_back({call.layer, std::vector<int64_t>(call.experts.begin(), call.experts.end()),
                     std::vector<int32_t>(call.counts.begin(), call.counts.end())});
    if (fail_start) return Unavailable("executor refused the call");
    worker_ = std::thread([this, call] { Compute(call); });
    return Status::Ok();
  }
  Status Finish() override {
    if (worker_.joinable()) worker_.join();
    if (fail_finish) {
      if (step_aside_on_failure) available = false;
      return Unavailable("node 'test' did not answer within 5 ms");
    }
    return Status::Ok();
  }
  bool Available() override { return available; }

  struct Call {
    int64_t layer;
    std::vector<int64_t> experts;
    std::vector<int32_t> counts;
  };
  std::vector<Call> calls;
  bool fail_start = false, fail_finish = false;
  bool available = true;               // what Available() says
  bool step_aside_on_failure = false;  // a failed Finish makes it unavailable (skip-expert)

 private:
  void Compute(const ExpertCall& call) {
    const int64_t rows = *std::max_element(call.counts.begin(), call.counts.end());
    std::vector<float> mid(static_cast<size_t>(rows * model_->config().ffd_hidden));
    EXPECT_TRUE(RunExpertCallLocally(model_->layers()[static_cast<size_t>(call.layer)], call, mid.data()).ok());
  }

  std::shared_ptr<const Model> model_;
  std::thread worker_;
};

// Layers 0 and 2 split over two executors and local; layer 1 all local.
inline MlpPlacement MakePlacement(const Model& m, std::vector<ExpertExecutor*> executors) {
  MlpPlacement p;
  p.executors = std::move(executors);
  p.owner.resize(m.layers().size());
  for (size_t l : {size_t{0}, size_t{2}}) {
    for (size_t slot = 0; slot < m.layers()[l].mlp.size(); ++slot)
      p.owner[l].push_back(slot % 3 == 2 ? MlpPlacement::kLocal : static_cast<int32_t>(slot % 3));
  }
  return p;
}

}  // namespace brickrt::testing
