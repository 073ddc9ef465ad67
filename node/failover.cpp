// NodeLink, FallbackExecutor and SkipExecutor.
#include "node/failover.h"

#include <algorithm>

#include "bricks/blocks.h"
#include "core/log.h"

namespace brickrt {
namespace {
constexpr const char* kModule = "node";
}  // namespace

NodeLink::NodeLink(std::unique_ptr<RemoteExecutor> remote, bool up, std::string node)
    : remote_(std::move(remote)), up_(up), last_attempt_(std::chrono::steady_clock::now()), node_(std::move(node)) {}

bool NodeLink::Up() {
  if (up_) return true;
  const auto now = std::chrono::steady_clock::now();
  if (now - last_attempt_ < kReconnectEvery) return false;
  last_attempt_ = now;
  up_ = remote_->Connect().ok();
  if (up_) log::Warn(kModule, "node '" + node_ + "' answers again; its experts run there");
  return up_;
}

void NodeLink::Down() {
  up_ = false;
  last_attempt_ = std::chrono::steady_clock::now();  // the failed call was this outage's first try
}

FallbackExecutor::FallbackExecutor(NodeLink link, std::shared_ptr<const Model> model, NodeCallStats* stats)
    : link_(std::move(link)), model_(std::move(model)), stats_(stats), warned_(!link_.up()) {}  // PlanSplit warned

Status FallbackExecutor::Start(const ExpertCall& call) {
  call_ = call;
  remote_started_ = link_.Up() && link_.remote().Start(call).ok();
  return Status::Ok();
}

Status FallbackExecutor::Finish() {
  if (remote_started_) {
    Status st = link_.remote().Finish();
    if (st.ok()) {
      warned_ = false;
      ++stats_->remote;
      return st;
    }
    if (!warned_) log::Warn(kModule, st.message() + "; running its experts locally (on_failure: local-fallback)");
  } else if (!warned_) {
    log::Warn(kModule, "node '" + link_.node() + "' could not take layer " + std::to_string(call_.layer) +
                           "; running its experts locally (on_failure: local-fallback)");
  }
  link_.Down();
  warned_ = true;
  ++stats_->local;
  return RunLocally();
}

Status FallbackExecutor::RunLocally() {
  const int64_t rows = *std::max_element(call_.counts.begin(), call_.counts.end());
  const auto need = static_cast<size_t>(rows * model_->config().ffd_hidden);
  if (mid_.size() < need) mid_.resize(need);
  return RunExpertCallLocally(model_->layers()[static_cast<size_t>(call_.layer)], call_, mid_.data());
}

SkipExecutor::SkipExecutor(NodeLink link, NodeCallStats* stats)
    : link_(std::move(link)), stats_(stats), warned_(!link_.up()) {}  // down at the start: PlanSplit warned

bool SkipExecutor::Available() {
  if (link_.Up()) {
    warned_ = false;
    return true;
  }
  if (!warned_) {
    log::Warn(kModule, "node '" + link_.node() +
                           "' is unreachable; its experts leave the routing until it answers (on_failure: skip-expert)");
    warned_ = true;
  }
  ++stats_->skipped;
  return false;
}

Status SkipExecutor::Start(const ExpertCall& call) {
  Status st = link_.remote().Start(call);
  return st.ok() ? st : Failed(std::move(st));
}

Status SkipExecutor::Finish() {
  Status st = link_.remote().Finish();
  if (st.ok()) {
    ++stats_->remote;
    return st;
  }
  return Failed(std::move(st));
}

Status SkipExecutor::Failed(Status st) {
  // Only a node that cannot be reached steps aside; an error reply (a digest it no longer serves, a
  // malformed answer) is a fault of the deployment and fails the step.
  if (st.code() != StatusCode::kUnavailable) return st;
  link_.Down();
  log::Warn(kModule, st.message() + "; its experts leave the routing until it answers (on_failure: skip-expert)");
  warned_ = true;
  return st;
}

}  // namespace brickrt
