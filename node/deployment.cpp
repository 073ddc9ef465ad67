// Deployment: admission, the batched step and sampling.
#include "node/deployment.h"

#include <algorithm>

#include "node/session_factory.h"

namespace brickrt {
namespace {
// Prefill chunks of one step, over all sequences: bounds the workspace (it is sized for the largest
// step) while a batch of long prompts is still admitted over a few steps.
constexpr int64_t kMaxStepTokens = 4096;

SamplingParams ParamsOf(const serve::GenerateRequest& r) {
  SamplingParams p;
  p.temperature = r.temperature;
  p.top_k = static_cast<int>(r.top_k);
  p.top_p = r.top_p;
  p.seed = r.seed;
  return p;
}
}  // namespace

Result<std::unique_ptr<Deployment>> Deployment::Create(LoadedManifest loaded, int max_batch, int64_t max_context,
                                                       ThreadPool* pool) {
  SessionOptions so;
  so.max_sequences = max_batch;
  so.max_context = max_context;
  so.max_step_tokens = std::max<int64_t>(max_context, std::min<int64_t>(kMaxStepTokens, max_context * max_batch));
  BRICK_ASSIGN_OR_RETURN(std::unique_ptr<ModelSession> session, CreateSession(loaded.model, loaded.plan.get(), so, pool));
  return std::unique_ptr<Deployment>(new Deployment(std::move(loaded), std::move(session), max_batch));
}

Deployment::Deployment(LoadedManifest loaded, std::unique_ptr<ModelSession> session, int max_batch)
    : loaded_(std::move(loaded)), session_(std::move(session)), max_batch_(max_batch) {
  running_.reserve(static_cast<size_t>(max_batch));
  chunks_.reserve(static_cast<size_t>(max_batch));
  logits_.resize(static_cast<size_t>(max_batch * loaded_.model->config().vocab_size));
}

Status Deployment::Check(const serve::GenerateRequest& req) const {
  const int64_t vocab = loaded_.model->config().vocab_size;
  for (int32_t t : req.prompt) {
    if (t < 0 || t >= vocab) {
      return InvalidArgument("token id " + std::to_string(t) + " is outside the vocabulary [0, " + std::to_string(vocab) +
                             ") of " + manifest());
    }
  }
  const int64_t need = static_cast<int64_t>(req.prompt.size()) + req.max_new_tokens;
  const int64_t room = session_->options().max_context;
  if (need > room) {
    return InvalidArgument("prompt (" + std::to_string(req.prompt.size()) + " tokens) plus max_new_tokens (" +
                           std::to_string(req.max_new_tokens) + ") exceed the context of " + std::to_string(room) +
                           " tokens this coordinator serves");
  }
  if (static_cast<int64_t>(req.prompt.size()) > session_->options().max_step_tokens) {
    return InvalidArgument("a prompt of " + std::to_string(req.prompt.size()) + " tokens exceeds the step budget of " +
                           std::to_string(session_->options().max_step_tokens));
  }
  return ValidateSampling(ParamsOf(req));
}

bool Deployment::HasRoomFor(int64_t tokens) const {
  return static_cast<int>(running_.size()) < max_batch_ && step_tokens_ + tokens <= session_->options().max_step_tokens;
}

void Deployment::Admit(std::unique_ptr<ActiveRequest> r) {
  r->seq = *session_->AddSequence();  // a free slot: HasRoomFor
  if (!r->sampler) r->sampler.emplace(ParamsOf(r->req), loaded_.model->config().vocab_size);
  step_tokens_ += static_cast<int64_t>(r->pending.size());
  running_.push_back(std::move(r));
}

Status Deployment::Step(std::vector<std::unique_ptr<ActiveRequest>>* done) {
  if (running_.empty()) return Status::Ok();
  chunks_.clear();
  for (const auto& r : running_) chunks_.push_back({r->seq, r->pending});
  const auto t0 = ActiveRequest::Clock::now();
  BRICK_RETURN_IF_ERROR(session_->Forward(chunks_, /*all_positions=*/false, logits_.data()));
  const double seconds = std::chrono::duration<double>(ActiveRequest::Clock::now() - t0).count();
  const int64_t V = loaded_.model->config().vocab_size;
  const int64_t eos = loaded_.model->config().eos_token_id;
  step_tokens_ = 0;
  size_t kept = 0;
  for (size_t i = 0; i < running_.size(); ++i) {
    std::unique_ptr<ActiveRequest>& r = running_[i];
    (r->prefilled ? r->decode_seconds : r->prefill_seconds) += seconds;
    r->prefilled = true;
    const int32_t token = r->sampler->Sample(logits_.data() + static_cast<int64_t>(i) * V);
    r->generated.push_back(token);
    const bool finished = r->generated.size() >= r->req.max_new_tokens || (r->req.stop_at_eos && token == eos);
    if (finished) {
      session_->RemoveSequence(r->seq);
      done->push_back(std::move(r));
      continue;
    }
    r->pending.assign(1, token);  // capacity kept: no allocation
    step_tokens_ += 1;
    running_[kept++] = std::move(r);
  }
  running_.resize(kept);
  return Status::Ok();
}

std::vector<std::unique_ptr<ActiveRequest>> Deployment::TakeAll() {
  std::vector<std::unique_ptr<ActiveRequest>> out;
  for (auto& r : running_) {
    session_->RemoveSequence(r->seq);
    r->seq = -1;
    if (r->prefilled) {  // replay the whole history on the next model: prompt + every token so far
      r->pending = r->req.prompt;
      r->pending.insert(r->pending.end(), r->generated.begin(), r->generated.end());
    }
    out.push_back(std::move(r));
  }
  running_.clear();
  step_tokens_ = 0;
  return out;
}

}  // namespace brickrt
