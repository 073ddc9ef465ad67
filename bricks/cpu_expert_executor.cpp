// CpuExpertExecutor: one worker thread, one call at a time.
#include "bricks/cpu_expert_executor.h"

#include <algorithm>

#include "bricks/blocks.h"

namespace brickrt {

CpuExpertExecutor::CpuExpertExecutor(std::shared_ptr<const Model> model)
    : model_(std::move(model)), worker_([this] { Loop(); }) {}

CpuExpertExecutor::~CpuExpertExecutor() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  worker_.join();  // the worker finishes a pending call first: its output buffer is still the caller's
}

Status CpuExpertExecutor::Start(const ExpertCall& call) {
  std::lock_guard<std::mutex> lock(mu_);
  if (in_flight_) return Internal("CpuExpertExecutor: a call is already in flight");
  call_ = call;
  pending_ = true;
  in_flight_ = true;
  done_ = false;
  cv_.notify_all();
  return Status::Ok();
}

Status CpuExpertExecutor::Finish() {
  std::unique_lock<std::mutex> lock(mu_);
  if (!in_flight_) return Internal("CpuExpertExecutor: Finish without a started call");
  cv_.wait(lock, [this] { return done_; });
  in_flight_ = false;
  return result_;
}

void CpuExpertExecutor::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [this] { return pending_ || stop_; });
    if (!pending_) return;  // stop_ with nothing to do
    pending_ = false;
    const ExpertCall call = call_;
    lock.unlock();
    Status st;
    if (call.layer < 0 || call.layer >= static_cast<int64_t>(model_->layers().size())) {
      st = InvalidArgument("CPU expert call for layer " + std::to_string(call.layer) + " of a " +
                           std::to_string(model_->layers().size()) + "-layer model");
    } else {
      const int32_t rows = call.counts.empty() ? 0 : *std::max_element(call.counts.begin(), call.counts.end());
      const size_t need = static_cast<size_t>(rows * model_->config().ffd_hidden);
      if (mid_.size() < need) mid_.resize(need);
      const size_t lora = static_cast<size_t>(rows * model_->MaxLoraRank());
      if (lora_.size() < lora) lora_.resize(lora);
      st = RunExpertCallLocally(model_->layers()[static_cast<size_t>(call.layer)], call, mid_.data(),
                                lora > 0 ? lora_.data() : nullptr);
    }
    lock.lock();
    result_ = std::move(st);
    done_ = true;
    cv_.notify_all();
  }
}

}  // namespace brickrt
