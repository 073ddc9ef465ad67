// Session: validation, row bookkeeping and the layer loop of one forward step.
#include "bricks/session.h"

#include <algorithm>
#include <cstring>

#include "bricks/blocks.h"
#include "bricks/step_validation.h"
#include "core/system.h"

namespace brickrt {

Session::Session(std::shared_ptr<const Model> model, const SessionOptions& opts, ThreadPool* pool)
    : model_(std::move(model)),
      opts_(opts),
      pool_(pool),
      ws_(model_->config(), opts.max_step_tokens, opts.max_context, pool ? pool->size() : 1,
          model_->MaxLoraRank(),
          opts.mlp_placement ? static_cast<int>(opts.mlp_placement->executors.size()) : 0) {
  const auto n = static_cast<size_t>(opts.max_step_tokens);
  row_seq_.resize(n);
  row_token_.resize(n);
  row_pos_.resize(n);
  out_rows_.resize(n);
  BRICK_ASSERT(opts.max_sequences >= 1 && opts.max_context >= 1 && opts.max_step_tokens >= 1,
               "SessionOptions must be validated (Session::Create)");
  caches_.reserve(static_cast<size_t>(opts.max_sequences));
  cache_ptrs_.reserve(static_cast<size_t>(opts.max_sequences));
  live_.reserve(static_cast<size_t>(opts.max_sequences));
}

int64_t Session::PlannedBytes(const ModelConfig& cfg, const SessionOptions& opts, int n_threads, int64_t lora_rank) {
  // All operands are capped by Create (sizes < 2^24, counts < 2^16), so this cannot overflow.
  const double d = static_cast<double>(cfg.n_embd);
  const double cache = static_cast<double>(cfg.n_layer) * static_cast<double>(opts.max_context) * d * 4;
  const double rows = static_cast<double>(opts.max_step_tokens);
  const double width = 4 * d + static_cast<double>(cfg.att_hidden) * 2 + static_cast<double>(cfg.ffd_hidden) +
                       static_cast<double>(cfg.gating_size) + static_cast<double>(lora_rank) + 64;
  // Split MLP execution keeps three [rows·k, D] buffers (workspace.h SplitScratch).
  const double split = opts.mlp_placement != nullptr ? 3 * rows * std::max(1, cfg.k_mlp) * d * 4 : 0;
  const double ws = rows * width * 4 + static_cast<double>(opts.max_context) * 4 * n_threads + split;
  const double total = ws + cache * opts.max_sequences;
  return total > 9e18 ? INT64_MAX : static_cast<int64_t>(total);
}

Result<std::unique_ptr<Session>> Session::Create(std::shared_ptr<const Model> model, const SessionOptions& opts,
                                                 ThreadPool* pool) {
  BRICK_RETURN_IF_ERROR(ValidateSessionOptions(opts));
  if (opts.mlp_placement != nullptr) BRICK_RETURN_IF_ERROR(ValidatePlacement(*model, *opts.mlp_placement));
  const int64_t need = PlannedBytes(model->config(), opts, pool ? pool->size() : 1, model->MaxLoraRank());
  const int64_t have = PhysicalMemoryBytes();
  if (have > 0 && need > have) return SessionTooLarge(opts, need, have, "this machine's");
  return std::make_unique<Session>(std::move(model), opts, pool);
}

bool Session::Live(int seq) const { return seq >= 0 && seq < static_cast<int>(live_.size()) && live_[seq]; }

int Session::LiveSequences() const { return static_cast<int>(std::count(live_.begin(), live_.end(), true)); }

Result<int> Session::AddSequence() {
  const ModelConfig& cfg = model_->config();
  for (size_t i = 0; i < live_.size(); ++i) {
    if (!live_[i]) {
      caches_[i]->set_length(0);
      live_[i] = true;
      return static_cast<int>(i);
    }
  }
  if (static_cast<int>(caches_.size()) >= opts_.max_sequences)
    return OutOfRange("session already holds max_sequences=" + std::to_string(opts_.max_sequences) + " sequences");
  caches_.push_back(std::make_unique<KvCache>(cfg.n_layer, opts_.max_context, cfg.n_embd));
  cache_ptrs_.push_back(caches_.back().get());
  live_.push_back(true);
  return static_cast<int>(caches_.size() - 1);
}

void Session::RemoveSequence(int seq) {
  if (Live(seq)) live_[static_cast<size_t>(seq)] = false;
}

int64_t Session::Length(int seq) const { return Live(seq) ? caches_[static_cast<size_t>(seq)]->length() : -1; }

int64_t Session::CacheBytes() const {
  int64_t n = 0;
  for (const auto& c : caches_) n += c->bytes();
  return n;
}

Status Session::Validate(std::span<const SequenceChunk> chunks) const {
  return ValidateStep(chunks, model_->config().vocab_size, opts_,
                      [this](int seq) { return Live(seq) ? caches_[static_cast<size_t>(seq)]->length() : -1; });
}

void Session::Trace(int64_t l, bool attention, const StepRows& rows, Clock::time_point start) const {
  const Layer& layer = model_->layers()[static_cast<size_t>(l)];
  const MlpPlacement* p = opts_.mlp_placement;
  BlockTrace t;
  t.layer = l;
  t.attention = attention;
  t.n = rows.n;
  t.k = attention ? model_->config().k_att : ws_.mlp_k;  // fewer while experts are unreachable
  t.seq = rows.seq;
  t.pos = rows.pos;
  t.tokens = row_token_.data();
  t.slots = ws_.ids.data();  // the block's routing, still in the workspace
  t.gates = ws_.gates.data_as<float>();
  t.ids = attention ? &layer.attn_ids : &layer.mlp_ids;
  if (!attention && p != nullptr && static_cast<size_t>(l) < p->owner.size() && !p->owner[l].empty())
    t.owner = &p->owner[static_cast<size_t>(l)];
  t.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  opts_.trace->OnBlock(t);
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
    const bool tracing = opts_.trace != nullptr;
    auto t0 = tracing ? Clock::now() : Clock::time_point();
    RunAttentionBlock(layers[l], static_cast<int64_t>(l), cfg, rows, cache_ptrs_.data(), ws_, pool_);
    if (tracing) Trace(static_cast<int64_t>(l), /*attention=*/true, rows, t0);
    if (tracing) t0 = Clock::now();
    // A failed executor call aborts the step before any sequence advances (the rows written into the
    // caches lie beyond their lengths and are overwritten by the next step).
    BRICK_RETURN_IF_ERROR(RunMlpBlock(layers[l], static_cast<int64_t>(l), cfg, n, ws_, pool_, opts_.mlp_placement));
    if (tracing) Trace(static_cast<int64_t>(l), /*attention=*/false, rows, t0);
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
  float* lora_scratch = ws_.lora.empty() ? nullptr : ws_.lora.mutable_data_as<float>();
  model_->lm_head().Forward(x, n_out, logits, lora_scratch, pool_);
  return Status::Ok();
}

}  // namespace brickrt
