// Session: validation, row bookkeeping and the layer loop of one forward step.
#include "bricks/session.h"

#include <algorithm>
#include <cstring>

#include "bricks/blocks.h"

namespace brickrt {

Session::Session(std::shared_ptr<const Model> model, const SessionOptions& opts, ThreadPool* pool)
    : model_(std::move(model)),
      opts_(opts),
      pool_(pool),
      ws_(model_->config(), opts.max_step_tokens, opts.max_context, pool ? pool->size() : 1) {
  const auto n = static_cast<size_t>(opts.max_step_tokens);
  row_seq_.resize(n);
  row_token_.resize(n);
  row_pos_.resize(n);
  out_rows_.resize(n);
  caches_.reserve(static_cast<size_t>(opts.max_sequences));
  cache_ptrs_.reserve(static_cast<size_t>(opts.max_sequences));
}

Result<int> Session::AddSequence() {
  const ModelConfig& cfg = model_->config();
  for (size_t i = 0; i < caches_.size(); ++i) {
    if (!caches_[i]) {
      caches_[i] = std::make_unique<KvCache>(cfg.n_layer, opts_.max_context, cfg.n_embd);
      cache_ptrs_[i] = caches_[i].get();
      return static_cast<int>(i);
    }
  }
  if (static_cast<int>(caches_.size()) >= opts_.max_sequences)
    return OutOfRange("session already holds max_sequences=" + std::to_string(opts_.max_sequences) + " sequences");
  caches_.push_back(std::make_unique<KvCache>(cfg.n_layer, opts_.max_context, cfg.n_embd));
  cache_ptrs_.push_back(caches_.back().get());
  return static_cast<int>(caches_.size() - 1);
}

void Session::RemoveSequence(int seq) {
  if (seq < 0 || seq >= static_cast<int>(caches_.size())) return;
  caches_[static_cast<size_t>(seq)].reset();
  cache_ptrs_[static_cast<size_t>(seq)] = nullptr;
}

int64_t Session::Length(int seq) const { return caches_[static_cast<size_t>(seq)]->length(); }

int64_t Session::CacheBytes() const {
  int64_t n = 0;
  for (const auto& c : caches_)
    if (c) n += c->bytes();
  return n;
}

Status Session::Validate(std::span<const SequenceChunk> chunks) const {
  const int64_t vocab = model_->config().vocab_size;
  int64_t total = 0;
  for (size_t i = 0; i < chunks.size(); ++i) {
    const SequenceChunk& c = chunks[i];
    if (c.seq < 0 || c.seq >= static_cast<int>(caches_.size()) || !caches_[static_cast<size_t>(c.seq)])
      return InvalidArgument("unknown sequence " + std::to_string(c.seq));
    for (size_t j = 0; j < i; ++j)
      if (chunks[j].seq == c.seq) return InvalidArgument("sequence " + std::to_string(c.seq) + " appears twice in one step");
    if (c.tokens.empty()) return InvalidArgument("sequence " + std::to_string(c.seq) + ": empty chunk");
    for (int32_t t : c.tokens) {
      if (t < 0 || t >= vocab)
        return InvalidArgument("token id " + std::to_string(t) + " is outside the vocabulary [0, " +
                               std::to_string(vocab) + ")");
    }
    const int64_t len = caches_[static_cast<size_t>(c.seq)]->length();
    if (len + static_cast<int64_t>(c.tokens.size()) > opts_.max_context)
      return OutOfRange("sequence " + std::to_string(c.seq) + " would exceed max_context=" +
                        std::to_string(opts_.max_context) + " tokens");
    total += static_cast<int64_t>(c.tokens.size());
  }
  if (total > opts_.max_step_tokens)
    return OutOfRange("step has " + std::to_string(total) + " tokens, more than max_step_tokens=" +
                      std::to_string(opts_.max_step_tokens));
  return Status::Ok();
}

Status Session::Forward(std::span<const SequenceChunk> chunks, bool all_positions, float* logits) {
  BRICK_RETURN_IF_ERROR(Validate(chunks));
  const ModelConfig& cfg = model_->config();
  const int64_t D = cfg.n_embd;

  // Lay out the rows of the step: chunk after chunk, positions continuing each sequence.
  int64_t n = 0, n_out = 0;
  for (const SequenceChunk& c : chunks) {
    const int64_t start = caches_[static_cast<size_t>(c.seq)]->length();
    for (size_t j = 0; j < c.tokens.size(); ++j, ++n) {
      row_seq_[n] = c.seq;
      row_token_[n] = c.tokens[j];
      row_pos_[n] = start + static_cast<int64_t>(j);
      if (all_positions || j + 1 == c.tokens.size()) out_rows_[n_out++] = n;
    }
  }

  float* h = ws_.hidden.mutable_data_as<float>();
  model_->embedding().Lookup(row_token_.data(), n, h);
  const StepRows rows{n, row_seq_.data(), row_pos_.data()};
  const auto& layers = model_->layers();
  for (size_t l = 0; l < layers.size(); ++l) {
    RunAttentionBlock(layers[l], static_cast<int64_t>(l), cfg, rows, cache_ptrs_.data(), ws_, pool_);
    RunMlpBlock(layers[l], cfg, n, ws_, pool_);
  }
  for (const SequenceChunk& c : chunks) {
    KvCache& cache = *caches_[static_cast<size_t>(c.seq)];
    cache.set_length(cache.length() + static_cast<int64_t>(c.tokens.size()));
  }

  // Final norm and lm_head only on the rows whose logits are wanted.
  float* x = ws_.normed.mutable_data_as<float>();
  for (int64_t i = 0; i < n_out; ++i) {
    if (out_rows_[i] != i) std::memcpy(h + i * D, h + out_rows_[i] * D, static_cast<size_t>(D) * sizeof(float));
  }
  model_->ln_f().Apply(h, n_out, x);
  model_->lm_head().Forward(x, n_out, logits, pool_);
  return Status::Ok();
}

}  // namespace brickrt
