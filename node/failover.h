// What a split does when a node fails (placement.on_failure, issue #5): executors that wrap a node's
// RemoteExecutor. `fail` needs none (the RemoteExecutor's error fails the step); `local-fallback`
// runs the node's experts on the coordinator's own copies; `skip-expert` takes the node's experts out
// of the routing (bricks/executor.h, ExpertExecutor::Available). Both keep a node that went down out
// of the hot path and ask it again at most once a second, so the split resumes when it is back.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "bricks/executor.h"
#include "bricks/model.h"
#include "node/remote_executor.h"

namespace brickrt {

// How one node's calls went, updated as they finish (SplitPlan::node_stats).
struct NodeCallStats {
  int64_t remote = 0;   // calls the node answered
  int64_t local = 0;    // local-fallback: calls run on the local copies instead
  int64_t skipped = 0;  // skip-expert: layer routings that left the node's experts out
};

// A node's RemoteExecutor and whether it is up. Down after a failed call or Connect; then Up() asks
// the node again (Hello, which re-checks every digest) at most once per kReconnectEvery.
class NodeLink {
 public:
  static constexpr std::chrono::milliseconds kReconnectEvery{1000};

  NodeLink(std::unique_ptr<RemoteExecutor> remote, bool up, std::string node);
  bool Up();
  void Down();
  bool up() const { return up_; }  // as last seen, without asking
  RemoteExecutor& remote() { return *remote_; }
  const std::string& node() const { return node_; }

 private:
  std::unique_ptr<RemoteExecutor> remote_;
  bool up_;
  std::chrono::steady_clock::time_point last_attempt_;
  std::string node_;
};

// on_failure: local-fallback. A call the node cannot take or answer runs on the local copies of its
// experts (the coordinator loaded them), warning once per outage.
class FallbackExecutor : public ExpertExecutor {
 public:
  FallbackExecutor(NodeLink link, std::shared_ptr<const Model> model, NodeCallStats* stats);
  Status Start(const ExpertCall& call) override;
  Status Finish() override;

 private:
  Status RunLocally();

  NodeLink link_;
  std::shared_ptr<const Model> model_;
  NodeCallStats* stats_;  // owned by the SplitPlan
  ExpertCall call_;
  bool remote_started_ = false, warned_ = false;
  std::vector<float> mid_;  // grows on failures only
};

// on_failure: skip-expert. While the node is down it says it is unavailable, so the MLP block routes
// each token as if the node's experts were dropped (warned once per outage); a call that fails takes
// the node down, and the block routes that layer again without it.
class SkipExecutor : public ExpertExecutor {
 public:
  SkipExecutor(NodeLink link, NodeCallStats* stats);
  Status Start(const ExpertCall& call) override;
  Status Finish() override;
  bool Available() override;

 private:
  Status Failed(Status st);

  NodeLink link_;
  NodeCallStats* stats_;  // owned by the SplitPlan
  bool warned_ = false;
};

}  // namespace brickrt
