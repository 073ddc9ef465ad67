// CudaSession: validation and row bookkeeping as Session, then one step as a sequence of kernels on
// one stream, in the CPU's order (bricks/blocks.cpp).
#include "bricks/cuda/cuda_session.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "bricks/step_validation.h"
#include "kernels/cuda/device.h"
#include "kernels/cuda/expert_gemm.h"
#include "kernels/cuda/expert_gemv.h"
#include "kernels/cuda/gelu.h"
#include "kernels/cuda/layernorm.h"
#include "kernels/cuda/rows.h"
#include "kernels/cuda/softmax_topk.h"
#include "kernels/cuda/stickbreak.h"

namespace brickrt {
namespace {

// Sizes of one session's step buffers.
struct Dims {
  int64_t R = 0;  // max rows per step
  int64_t D = 0, A = 0, F = 0, G = 0, V = 0, L = 0;
  int64_t E = 0;           // most kept experts of any router
  int64_t k = 0;           // max(k_att, k_mlp)
  int64_t r = 0;           // the largest LoRA rank attached (0: none)
  size_t gemv = 0;         // ExpertGemvScratchBytes for every block ExpertGemvCuda may run
  DType dt = DType::kF32;  // what the matmul scratch is sized for (CudaModel::scratch_dtype)
};

Dims DimsOf(const CudaModel& m, const SessionOptions& o) {
  const ModelConfig& c = m.config();
  Dims d;
  d.R = o.max_step_tokens;
  d.D = c.n_embd, d.A = c.att_hidden, d.F = c.ffd_hidden, d.G = c.gating_size, d.V = c.vocab_size;
  d.L = c.n_layer;
  for (const CudaLayer& l : m.layers()) d.E = std::max({d.E, l.attn_router.n_experts, l.mlp_router.n_experts});
  d.k = std::max(c.k_att, c.k_mlp);
  d.r = m.cpu().MaxLoraRank();
  // The split-K scratch depends on P and N in steps: take the largest over the sizes a block uses.
  for (int64_t P = 1; P <= std::min<int64_t>(CudaSession::kGemvMaxPairs, d.R * d.k); ++P)
    for (int64_t N : {d.D, d.A, d.F}) d.gemv = std::max(d.gemv, cuda::ExpertGemvScratchBytes(P, N));
  d.dt = m.scratch_dtype();
  return d;
}

constexpr size_t Align8(size_t b) { return (b + 7) / 8 * 8; }

// The step's row metadata for n rows, the same layout in pinned host memory and on the device:
// tokens int32 [n], out_rows int32 [n], positions int64 [n], cache row pointers [L, n].
struct StepLayout {
  StepLayout(int64_t n, int64_t L)
      : out_rows(Align8(static_cast<size_t>(n) * 4)),
        positions(out_rows + Align8(static_cast<size_t>(n) * 4)),
        kv(positions + static_cast<size_t>(n) * 8),
        bytes(kv + static_cast<size_t>(L * n) * sizeof(float*)) {}
  size_t tokens = 0, out_rows, positions, kv, bytes;
};

}  // namespace

// Device buffers of one step (shapes for R = max_step_tokens rows, P = R·k pairs).
struct CudaSession::Scratch {
  float* h = nullptr;              // F32 [R, D]  residual stream
  float* x = nullptr;              // F32 [R, D]  LN output (also the new cache rows)
  float* router_hidden = nullptr;  // F32 [R, G]
  float* router_logits = nullptr;  // F32 [R, E]
  float* gates = nullptr;          // F32 [R, k]
  int32_t* ids = nullptr;          // int32 [R, k]
  int32_t* offsets = nullptr;      // int32 [E + 1]
  int32_t* pair_rows = nullptr;    // int32 [P]
  float* pair_gates = nullptr;     // F32 [P]
  int32_t* pair_of = nullptr;      // int32 [P]
  float* pair_in = nullptr;        // F32 [P, max(D, A)]  gathered rows; then attention outputs
  float* pair_mid = nullptr;       // F32 [P, max(A, F)]  queries / MLP hidden
  float* pair_out = nullptr;       // F32 [P, D]          expert outputs before gating
  void* matmul = nullptr;          // MatmulScratchBytes(R, max(D, A, F, G)): x rounded to the weight dtype
  float* lora = nullptr;           // F32 [R, r]      x·A of one LoRA delta (none without loras)
  void* gemv = nullptr;            // ExpertGemvCuda's split-K partial sums (Dims::gemv)
  float* logits = nullptr;         // F32 [R, V]
  char* meta = nullptr;            // StepLayout(R, L).bytes

  // Carves every buffer with carve(bytes) -> void*: the same code plans the arena and fills it.
  template <typename Carve>
  void LayOut(const Dims& d, Carve&& carve) {
    const int64_t P = d.R * d.k;
    auto f32 = [&](int64_t n) { return static_cast<float*>(carve(static_cast<size_t>(n) * 4)); };
    auto i32 = [&](int64_t n) { return static_cast<int32_t*>(carve(static_cast<size_t>(n) * 4)); };
    h = f32(d.R * d.D);
    x = f32(d.R * d.D);
    router_hidden = f32(d.R * d.G);
    router_logits = f32(d.R * d.E);
    gates = f32(d.R * d.k);
    ids = i32(d.R * d.k);
    offsets = i32(d.E + 1);
    pair_rows = i32(P);
    pair_gates = f32(P);
    pair_of = i32(P);
    pair_in = f32(P * std::max(d.D, d.A));
    pair_mid = f32(P * std::max(d.A, d.F));
    pair_out = f32(P * d.D);
    matmul = carve(cuda::MatmulScratchBytes(d.R, std::max({d.D, d.A, d.F, d.G}), d.dt));
    lora = f32(d.R * d.r);
    gemv = carve(d.gemv);
    logits = f32(d.R * d.V);
    meta = static_cast<char*>(carve(StepLayout(d.R, d.L).bytes));
  }

  // Bytes LayOut carves, each rounded as DeviceArena::Carve rounds it.
  static size_t ArenaBytes(const Dims& d) {
    size_t total = 0;
    Scratch plan;
    plan.LayOut(d, [&total](size_t b) -> void* {
      total += cuda::DeviceArena::Round(b);
      return nullptr;
    });
    return total;
  }
};

CudaSession::CudaSession(std::shared_ptr<const CudaModel> model, const SessionOptions& opts)
    : model_(std::move(model)), opts_(opts), s_(std::make_unique<Scratch>()) {}

// The members free device memory, a stream and a cuBLAS handle of the model's device: make it current
// first (the destroying thread may have another one current).
CudaSession::~CudaSession() {
  if (model_ != nullptr) (void)cuda::UseDevice(model_->device());
}

int64_t CudaSession::PlannedBytes(const CudaModel& model, const SessionOptions& opts) {
  // Operands are capped by ValidateSessionOptions (sizes <= 2^24, counts <= 2^16): doubles cannot overflow.
  const ModelConfig& c = model.config();
  const double cache =
      static_cast<double>(c.n_layer) * static_cast<double>(opts.max_context) * static_cast<double>(c.n_embd) * 4;
  const double total = static_cast<double>(Scratch::ArenaBytes(DimsOf(model, opts))) + cache * opts.max_sequences;
  return total > 9e18 ? INT64_MAX : static_cast<int64_t>(total);
}

Result<std::unique_ptr<CudaSession>> CudaSession::Create(std::shared_ptr<const CudaModel> model,
                                                         const SessionOptions& opts, int64_t gemv_max_pairs) {
  BRICK_RETURN_IF_ERROR(ValidateSessionOptions(opts));
  // The split-K scratch (Dims::gemv, and PlannedBytes with it) is sized for blocks of at most
  // kGemvMaxPairs pairs: ExpertGemvScratchBytes grows with P past it (P = 128 needs more than P = 64), so a
  // larger threshold would let ExpertGemvCuda write past its carve into the logits on a real GPU (the
  // emulation only checks the whole arena's bounds).
  if (gemv_max_pairs > kGemvMaxPairs)
    return InvalidArgument("gemv_max_pairs=" + std::to_string(gemv_max_pairs) + " is above kGemvMaxPairs=" +
                           std::to_string(kGemvMaxPairs) + ", which the step scratch is sized for");
  // An expert Upload left off the GPU must have an executor here: the GPU would skip its pairs.
  const MlpPlacement* p = opts.mlp_placement;
  for (size_t l = 0; l < model->layers().size(); ++l) {
    for (size_t e = 0; e < model->layers()[l].w1.size(); ++e) {
      if (model->HasMlpExpert(l, e)) continue;
      const bool on_executor =
          p != nullptr && l < p->owner.size() && e < p->owner[l].size() && p->owner[l][e] != MlpPlacement::kLocal;
      if (!on_executor) {
        return InvalidArgument("L" + std::to_string(l) + ".mlp.E" +
                               std::to_string(model->cpu().layers()[l].mlp_ids[e]) +
                               " was left off the GPU at upload, and this session has no executor for it");
      }
    }
  }
  const int device = model->device();
  const std::string where = "creating a CUDA session on GPU " + std::to_string(device);
  Status st = cuda::UseDevice(device);
  if (!st.ok()) return st.WithContext(where);
  const int64_t need = PlannedBytes(*model, opts);
  for (const cuda::CudaDevice& d : cuda::ListDevices()) {
    if (d.index != device) continue;
    const int64_t have = static_cast<int64_t>(d.total_bytes) - model->device_bytes();
    if (need > have)
      return SessionTooLarge(opts, need, have, "GPU " + std::to_string(device) + "'s memory left after the weights,");
  }

  std::unique_ptr<CudaSession> s(new CudaSession(std::move(model), opts));
  s->gemv_max_pairs_ = std::max<int64_t>(0, gemv_max_pairs);
  for (const CudaLayer& l : s->model_->layers()) {
    auto any = [](const std::vector<CudaLoras>& a, const std::vector<CudaLoras>& b) {
      auto has = [](const CudaLoras& x) { return !x.empty(); };
      return std::any_of(a.begin(), a.end(), has) || std::any_of(b.begin(), b.end(), has);
    };
    s->block_loras_.push_back(any(l.wq_lora, l.wo_lora));
    s->block_loras_.push_back(any(l.w1_lora, l.w2_lora));
  }
  const Dims d = DimsOf(*s->model_, opts);
  auto stream = cuda::Stream::Create();
  if (!stream.ok()) return stream.status().WithContext(where);
  s->stream_ = std::move(stream).value();
  auto cublas = cuda::CublasHandle::Create();
  if (!cublas.ok()) return cublas.status().WithContext(where);
  s->cublas_ = std::move(cublas).value();
  const size_t arena_bytes = Scratch::ArenaBytes(d);
  auto memory = cuda::DeviceMemory::Allocate(arena_bytes);
  if (!memory.ok())
    return memory.status().WithContext(where + " (" + std::to_string(arena_bytes >> 20) + " MiB of step scratch)");
  s->arena_ = cuda::DeviceArena(std::move(memory).value());
  s->s_->LayOut(d, [&s](size_t b) { return s->arena_.Carve(b); });
  BRICK_ASSERT(s->arena_.used() == arena_bytes, "step arena carved as planned");
  auto meta = cuda::PinnedMemory::Allocate(StepLayout(d.R, d.L).bytes);
  if (!meta.ok()) return meta.status().WithContext(where + " (pinned row metadata)");
  s->meta_host_ = std::move(meta).value();
  auto offsets = cuda::PinnedMemory::Allocate(static_cast<size_t>(d.E + 1) * sizeof(int32_t));
  if (!offsets.ok()) return offsets.status().WithContext(where + " (pinned expert offsets)");
  s->offsets_host_ = std::move(offsets).value();
  if (opts.mlp_placement != nullptr)
    BRICK_RETURN_IF_ERROR(s->PlaceExperts(*opts.mlp_placement, d.R * s->model_->config().k_mlp));
  if (opts.trace != nullptr) {
    s->trace_ = std::make_unique<TraceRows>();
    TraceRows& t = *s->trace_;
    t.seq.resize(static_cast<size_t>(d.R));
    t.tokens.resize(static_cast<size_t>(d.R));
    t.pos.resize(static_cast<size_t>(d.R));
    const size_t bytes = static_cast<size_t>(d.R * d.k) * 4;
    BRICK_ASSIGN_OR_RETURN(t.ids, cuda::PinnedMemory::Allocate(bytes));
    BRICK_ASSIGN_OR_RETURN(t.gates, cuda::PinnedMemory::Allocate(bytes));
  }
  const auto slots = static_cast<size_t>(opts.max_sequences);
  s->caches_.reserve(slots);
  s->lengths_.reserve(slots);
  s->live_.reserve(slots);
  return s;
}

bool CudaSession::Live(int seq) const { return seq >= 0 && seq < static_cast<int>(live_.size()) && live_[seq]; }

int CudaSession::LiveSequences() const { return static_cast<int>(std::count(live_.begin(), live_.end(), true)); }

int64_t CudaSession::Length(int seq) const { return Live(seq) ? lengths_[static_cast<size_t>(seq)] : -1; }

void CudaSession::RemoveSequence(int seq) {
  if (Live(seq)) live_[static_cast<size_t>(seq)] = false;
}

int64_t CudaSession::CacheBytes() const {
  int64_t n = 0;
  for (const cuda::DeviceMemory& c : caches_) n += static_cast<int64_t>(c.bytes());
  return n;
}

Result<int> CudaSession::AddSequence() {
  for (size_t i = 0; i < live_.size(); ++i) {
    if (!live_[i]) {
      lengths_[i] = 0;
      live_[i] = true;
      return static_cast<int>(i);
    }
  }
  if (static_cast<int>(caches_.size()) >= opts_.max_sequences)
    return OutOfRange("session already holds max_sequences=" + std::to_string(opts_.max_sequences) + " sequences");
  const ModelConfig& c = model_->config();
  const size_t bytes = static_cast<size_t>(c.n_layer * opts_.max_context * c.n_embd) * sizeof(float);
  const std::string where = "allocating a KV cache on GPU " + std::to_string(model_->device());
  Status st = cuda::UseDevice(model_->device());
  if (!st.ok()) return st.WithContext(where);
  auto cache = cuda::DeviceMemory::Allocate(bytes);
  if (!cache.ok()) return cache.status().WithContext(where + " (" + std::to_string(bytes >> 20) + " MiB)");
  caches_.push_back(std::move(cache).value());
  lengths_.push_back(0);
  live_.push_back(true);
  return static_cast<int>(caches_.size() - 1);
}

Status CudaSession::UploadRows(std::span<const SequenceChunk> chunks, bool all_positions, int64_t n, int64_t* n_out) {
  const ModelConfig& c = model_->config();
  const int64_t L = c.n_layer, layer_stride = opts_.max_context * c.n_embd;
  const StepLayout lay(n, L);
  char* host = meta_host_.as<char>();
  auto* tokens = reinterpret_cast<int32_t*>(host + lay.tokens);
  auto* out_rows = reinterpret_cast<int32_t*>(host + lay.out_rows);
  auto* positions = reinterpret_cast<int64_t*>(host + lay.positions);
  auto* kv = reinterpret_cast<float**>(host + lay.kv);
  int64_t r = 0, out = 0;
  for (const SequenceChunk& ch : chunks) {
    const auto slot = static_cast<size_t>(ch.seq);
    for (size_t j = 0; j < ch.tokens.size(); ++j, ++r) {
      tokens[r] = ch.tokens[j];
      positions[r] = lengths_[slot] + static_cast<int64_t>(j);
      kv[r] = caches_[slot].as<float>();  // layer 0; the device pointer is only offset here, never read
      if (all_positions || j + 1 == ch.tokens.size()) out_rows[out++] = static_cast<int32_t>(r);
      if (trace_ != nullptr) {
        trace_->seq[static_cast<size_t>(r)] = ch.seq;
        trace_->tokens[static_cast<size_t>(r)] = ch.tokens[j];
        trace_->pos[static_cast<size_t>(r)] = positions[r];
      }
    }
  }
  for (int64_t l = 1; l < L; ++l)
    for (int64_t i = 0; i < n; ++i) kv[l * n + i] = kv[i] + l * layer_stride;
  *n_out = out;
  rows_.tokens = reinterpret_cast<const int32_t*>(s_->meta + lay.tokens);
  rows_.out_rows = reinterpret_cast<const int32_t*>(s_->meta + lay.out_rows);
  rows_.positions = reinterpret_cast<const int64_t*>(s_->meta + lay.positions);
  rows_.kv = reinterpret_cast<float* const*>(s_->meta + lay.kv);
  // The one host→device copy of the step; the pinned buffer is not rewritten before the step's final
  // synchronization, so the asynchronous copy is safe.
  return cuda::CopyToDevice(s_->meta, host, lay.bytes, stream_.get());
}

Status CudaSession::Block(size_t l, bool attention, int64_t n) {
  const auto start = std::chrono::steady_clock::now();
  const ModelConfig& c = model_->config();
  const CudaLayer& layer = model_->layers()[l];
  const CudaNorm& ln = attention ? layer.ln1 : layer.ln2;
  const int64_t D = c.n_embd;
  Scratch& s = *s_;
  void* st = stream_.get();
  BRICK_RETURN_IF_ERROR(cuda::LayerNormCuda(s.h, n, D, ln.weight, ln.bias, DType::kF32, ln.eps, s.x, st));
  // K = V = LN₁(h): the new rows join their sequence's cache before anyone attends (a token sees itself).
  if (attention) BRICK_RETURN_IF_ERROR(cuda::WriteRowsCuda(s.x, n, D, LayerKv(l, n), rows_.positions, D, st));
  if (!attention && bridge_ != nullptr && bridge_->AnyRemote(static_cast<int64_t>(l))) return SplitMlp(l, n, start);
  const int k = attention ? c.k_att : c.k_mlp;
  const bool gemv = UseGemv(l, attention, n * k);
  BRICK_RETURN_IF_ERROR(
      Route(attention ? layer.attn_router : layer.mlp_router, k, n, /*bias=*/nullptr, /*host_offsets=*/!gemv));
  BRICK_RETURN_IF_ERROR(Experts(l, attention, n, k, attention ? layer.wq.data() : layer.w1.data(),
                                attention ? layer.wo.data() : layer.w2.data(), gemv));
  BRICK_RETURN_IF_ERROR(Combine(n, k));
  return TraceBlock(l, attention, n, k, start);
}

bool CudaSession::UseGemv(size_t l, bool attention, int64_t P) const {
  return P <= gemv_max_pairs_ && !block_loras_[l * 2 + (attention ? 0 : 1)];
}

Status CudaSession::Route(const CudaRouter& r, int k, int64_t n, const float* bias, bool host_offsets) {
  const ModelConfig& c = model_->config();
  const int64_t D = c.n_embd, G = c.gating_size, E = r.n_experts;
  const DType dt = model_->dtype();
  Scratch& s = *s_;
  void* st = stream_.get();
  // Router: x·W1 + b1 → erf GELU → ·W2 (+ bias) → softmax → top-k (Router::Route).
  BRICK_RETURN_IF_ERROR(cuda::MatmulCuda(cublas_, s.x, n, D, r.w1, dt, G, false, s.router_hidden, s.matmul, st));
  BRICK_RETURN_IF_ERROR(cuda::AddBiasCuda(s.router_hidden, n, G, r.b1, st));
  BRICK_RETURN_IF_ERROR(cuda::GeluErfCuda(s.router_hidden, n * G, st));
  BRICK_RETURN_IF_ERROR(
      cuda::MatmulCuda(cublas_, s.router_hidden, n, G, r.w2, dt, E, false, s.router_logits, s.matmul, st));
  if (bias != nullptr) BRICK_RETURN_IF_ERROR(cuda::AddBiasCuda(s.router_logits, n, E, bias, st));
  BRICK_RETURN_IF_ERROR(cuda::SoftmaxTopKCuda(s.router_logits, n, E, k, s.gates, s.ids, st));
  BRICK_RETURN_IF_ERROR(
      cuda::BuildExpertGroupsCuda(s.ids, s.gates, n, k, E, s.offsets, s.pair_rows, s.pair_gates, s.pair_of, st));
  // The block's one synchronization: the per-expert GEMMs are sized on the host (spec §2.7).
  if (host_offsets) {
    BRICK_RETURN_IF_ERROR(
        cuda::CopyToHost(offsets_host_.data(), s.offsets, static_cast<size_t>(E + 1) * sizeof(int32_t), st));
  }
  return cuda::GatherRowsCuda(s.x, c.n_embd, s.pair_rows, n * k, s.pair_in, st);
}

Status CudaSession::Experts(size_t l, bool attention, int64_t n, int k, const void* const* w_in,
                            const void* const* w_out, bool gemv) {
  const ModelConfig& c = model_->config();
  const CudaLayer& layer = model_->layers()[l];
  const int64_t D = c.n_embd, E = (attention ? layer.attn_router : layer.mlp_router).n_experts;
  const DType dt = model_->dtype();
  Scratch& s = *s_;
  void* st = stream_.get();
  // pair_in [P, D] → pair_out [P, D]: Wq, attention, Wo, or W1, tanh GELU, W2.
  const int64_t P = n * k, mid = attention ? c.att_hidden : c.ffd_hidden;
  // x [P, K] → y [P, N] through the first or second projection of every pair's expert, with its LoRA
  // deltas (which act on the projection's output, before attention / the GELU, as on the CPU).
  auto project = [&](const float* x, int64_t K, bool second, float* y, int64_t N) -> Status {
    if (gemv) {
      const void* const* table =
          attention ? (second ? layer.wo_table : layer.wq_table) : (second ? layer.w2_table : layer.w1_table);
      return cuda::ExpertGemvCuda(x, K, P, K, s.offsets, E, table, dt, N, y, N, s.gemv, st);
    }
    const void* const* w = second ? w_out : w_in;
    const int32_t* offsets = offsets_host_.as<int32_t>();
    BRICK_RETURN_IF_ERROR(cuda::ExpertMatmulCuda(cublas_, x, offsets, E, K, w, dt, N, false, y, s.matmul, st));
    const std::vector<CudaLoras>& loras =
        attention ? (second ? layer.wo_lora : layer.wq_lora) : (second ? layer.w2_lora : layer.w1_lora);
    return AddExpertLoras(loras, w, E, x, K, y, N);
  };
  BRICK_RETURN_IF_ERROR(project(s.pair_in, D, /*second=*/false, s.pair_mid, mid));
  if (attention) {
    // Every pair at once: each query attends over its own row's sequence cache up to its position.
    const float scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim()));
    BRICK_RETURN_IF_ERROR(cuda::StickBreakPairsCuda(s.pair_mid, mid, P, s.pair_rows, rows_.positions, LayerKv(l, n), D,
                                                    mid, scale, s.pair_in, mid, st));
  } else {
    BRICK_RETURN_IF_ERROR(cuda::GeluTanhCuda(s.pair_mid, P * mid, st));
  }
  return project(attention ? s.pair_in : s.pair_mid, mid, /*second=*/true, s.pair_out, D);
}

Status CudaSession::AddLoras(const CudaLoras& loras, const float* x, int64_t M, float* y) {
  return AddLorasCuda(cublas_, loras, x, M, y, s_->lora, s_->matmul, stream_.get());
}

Status CudaSession::AddExpertLoras(const std::vector<CudaLoras>& loras, const void* const* w, int64_t E, const float* x,
                                   int64_t ldx, float* y, int64_t ldy) {
  const int32_t* offsets = offsets_host_.as<int32_t>();
  for (int64_t e = 0; e < E; ++e) {
    const int64_t first = offsets[e], count = offsets[e + 1] - offsets[e];
    // An expert an executor runs (null weights) has no loras here: PlanSplit keeps those on this device.
    if (count == 0 || w[e] == nullptr || loras[static_cast<size_t>(e)].empty()) continue;
    BRICK_RETURN_IF_ERROR(AddLoras(loras[static_cast<size_t>(e)], x + first * ldx, count, y + first * ldy));
  }
  return Status::Ok();
}

Status CudaSession::Combine(int64_t n, int k) {
  Scratch& s = *s_;
  return cuda::CombineGatedCuda(s.pair_out, model_->config().n_embd, s.pair_of, s.pair_gates, n, k, s.h, stream_.get());
}

Status CudaSession::PlaceExperts(const MlpPlacement& placement, int64_t max_pairs) {
  BRICK_ASSIGN_OR_RETURN(bridge_, CudaExecutorBridge::Create(model_->cpu(), placement, max_pairs));
  const auto& layers = model_->layers();
  split_w1_.resize(layers.size());
  split_w2_.resize(layers.size());
  for (size_t l = 0; l < layers.size(); ++l) {
    if (!bridge_->AnyRemote(static_cast<int64_t>(l))) continue;
    split_w1_[l] = layers[l].w1;
    split_w2_[l] = layers[l].w2;
    const std::vector<int32_t>& owner = bridge_->owner(static_cast<int64_t>(l));
    for (size_t e = 0; e < owner.size(); ++e) {
      if (owner[e] == MlpPlacement::kLocal) continue;
      split_w1_[l][e] = nullptr;  // ExpertMatmulCuda leaves these pairs for the executor
      split_w2_[l][e] = nullptr;
    }
  }
  return Status::Ok();
}

float* CudaSession::PairIn() const { return s_->pair_in; }
const int32_t* CudaSession::RoutedIds() const { return s_->ids; }
const float* CudaSession::RoutedGates() const { return s_->gates; }
float* CudaSession::PairOut() const { return s_->pair_out; }

Status CudaSession::Run(int64_t n, int64_t n_out, float* logits) {
  const ModelConfig& c = model_->config();
  const int64_t D = c.n_embd, V = c.vocab_size;
  Scratch& s = *s_;
  void* st = stream_.get();
  BRICK_RETURN_IF_ERROR(cuda::EmbeddingRowsCuda(model_->embedding(), model_->dtype(), V, D, rows_.tokens, n, s.h, st));
  for (size_t l = 0; l < model_->layers().size(); ++l) {
    BRICK_RETURN_IF_ERROR(Block(l, /*attention=*/true, n));
    BRICK_RETURN_IF_ERROR(Block(l, /*attention=*/false, n));
  }
  // Final norm and lm_head only on the rows whose logits are wanted.
  BRICK_RETURN_IF_ERROR(cuda::GatherRowsCuda(s.h, D, rows_.out_rows, n_out, s.x, st));
  const CudaNorm& f = model_->ln_f();
  BRICK_RETURN_IF_ERROR(cuda::LayerNormCuda(s.x, n_out, D, f.weight, f.bias, DType::kF32, f.eps, s.x, st));
  BRICK_RETURN_IF_ERROR(
      cuda::MatmulCuda(cublas_, s.x, n_out, D, model_->lm_head(), model_->dtype(), V, false, s.logits, s.matmul, st));
  BRICK_RETURN_IF_ERROR(AddLoras(model_->lm_head_lora(), s.x, n_out, s.logits));
  // Straight into the caller's memory: a pinned staging buffer would add a host copy of the same size.
  return cuda::CopyToHost(logits, s.logits, static_cast<size_t>(n_out * V) * sizeof(float), st);
}

Status CudaSession::Forward(std::span<const SequenceChunk> chunks, bool all_positions, float* logits) {
  BRICK_RETURN_IF_ERROR(
      ValidateStep(chunks, model_->config().vocab_size, opts_, [this](int seq) { return Length(seq); }));
  int64_t n = 0, n_out = 0;
  for (const SequenceChunk& ch : chunks) n += static_cast<int64_t>(ch.tokens.size());
  if (n == 0) return Status::Ok();
  Status st = cuda::UseDevice(model_->device());
  if (st.ok()) st = UploadRows(chunks, all_positions, n, &n_out);
  if (st.ok()) st = Run(n, n_out, logits);
  if (!st.ok()) {
    // A failed step leaves every length as it was (rows written into the caches lie beyond them). Work
    // it already enqueued is waited for, so the next step may rewrite the pinned row metadata.
    (void)stream_.Synchronize();
    return st.WithContext("CUDA session step on GPU " + std::to_string(model_->device()));
  }
  for (const SequenceChunk& ch : chunks)
    lengths_[static_cast<size_t>(ch.seq)] += static_cast<int64_t>(ch.tokens.size());
  return Status::Ok();
}

}  // namespace brickrt
