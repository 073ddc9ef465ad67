// Deployment: one manifest being served by a coordinator (node/coordinator.h) — its model, a session
// with room for max_batch sequences, and the generate requests running on it. The coordinator keeps
// the newest deployment for new requests and older ones until their last sequence finishes, so a
// swap loads before it unloads and a running sequence never changes manifest unless told to.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bricks/sampler.h"
#include "bricks/session.h"
#include "core/status.h"
#include "core/thread_pool.h"
#include "node/serve_wire.h"
#include "node/split.h"

namespace brickrt {

// A generate request from receipt to reply.
struct ActiveRequest {
  using Clock = std::chrono::steady_clock;
  std::string peer;  // the client's ROUTER identity
  serve::GenerateRequest req;
  Clock::time_point received;
  std::optional<Sampler> sampler;  // made on admission; moves with the request on a --now swap
  std::vector<int32_t> generated;
  std::vector<int32_t> pending;  // tokens the next step feeds: the prompt (and, after a move, the
                                 // tokens generated so far), then the last token
  int seq = -1;                  // in the deployment's session
  double queue_seconds = 0, prefill_seconds = 0, decode_seconds = 0;
  bool prefilled = false;
};

// A model ready to serve, as the coordinator's loader makes it.
struct LoadedManifest {
  std::string manifest;  // "NAME@VERSION" (or the spec's name for a composition)
  std::shared_ptr<const Model> model;
  std::unique_ptr<SplitPlan> plan;  // null: all local
  double load_seconds = 0;
};

class Deployment {
 public:
  // max_batch: sequences at once; max_context: tokens per sequence (prompt + generated). Errors: as
  // Session::Create (the caches must fit in memory).
  static Result<std::unique_ptr<Deployment>> Create(LoadedManifest loaded, int max_batch, int64_t max_context,
                                                    ThreadPool* pool);

  const std::string& manifest() const { return loaded_.manifest; }
  const Model& model() const { return *loaded_.model; }
  int sequences() const { return static_cast<int>(running_.size()); }
  bool idle() const { return running_.empty(); }
  int64_t step_tokens() const { return step_tokens_; }  // tokens the next Step feeds

  // Why this model cannot run the request (a token outside its vocabulary, a prompt plus new tokens
  // beyond max_context, bad sampling values): InvalidArgument naming the value. OK otherwise.
  Status Check(const serve::GenerateRequest& req) const;
  // Whether a request feeding `tokens` tokens fits in the next step (a free slot, step token budget).
  bool HasRoomFor(int64_t tokens) const;
  // Starts r (Check passed, HasRoomFor(r.pending.size())): a sequence, and a sampler if it has none.
  // Its pending tokens are prefilled by the next Step.
  void Admit(std::unique_ptr<ActiveRequest> r);
  // One forward step over every running request: new ones prefill, the others decode one token each.
  // Requests that are done (max_new_tokens reached, or EOS when asked) are moved into *done. On an
  // error (an executor's node failing under on_failure: fail) no request advances and the error is
  // returned; the caller decides their fate (TakeAll).
  Status Step(std::vector<std::unique_ptr<ActiveRequest>>* done);
  // Removes every running request (their sequences freed) and returns them; a --now swap replays
  // each on the new deployment (pending = prompt + generated so far).
  std::vector<std::unique_ptr<ActiveRequest>> TakeAll();

 private:
  Deployment(LoadedManifest loaded, std::unique_ptr<ModelSession> session, int max_batch);

  LoadedManifest loaded_;
  std::unique_ptr<ModelSession> session_;
  int max_batch_;
  int64_t step_tokens_ = 0;  // pending tokens of the next step
  std::vector<std::unique_ptr<ActiveRequest>> running_;
  std::vector<SequenceChunk> chunks_;  // reserved max_batch
  std::vector<float> logits_;          // [max_batch, V]
};

}  // namespace brickrt
