// Route -> group by expert -> run each expert on its rows -> gated scatter-add, for both blocks.
#include "bricks/blocks.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/cpu/packed_matrix.h"
#include "kernels/cpu/stickbreak.h"

namespace brickrt {
namespace {

// Gathers the rows of expert e's pairs from src [*, D] into dst [count, D].
void GatherRows(const ExpertGroups& g, int64_t e, const float* src, int64_t D, float* dst) {
  for (int32_t p = g.offsets[e], r = 0; p < g.offsets[e + 1]; ++p, ++r) {
    std::memcpy(dst + r * D, src + static_cast<int64_t>(g.rows[p]) * D, static_cast<size_t>(D) * sizeof(float));
  }
}

// h[row] += gate · y for every pair of expert e. Pairs are combined in expert order; the result
// differs from the reference's slot order only by F32 rounding.
void ScatterAddGated(const ExpertGroups& g, int64_t e, const float* y, int64_t D, float* h) {
  for (int32_t p = g.offsets[e], r = 0; p < g.offsets[e + 1]; ++p, ++r) {
    float* dst = h + static_cast<int64_t>(g.rows[p]) * D;
    const float* src = y + r * D;
    const float gate = g.gates[p];
    for (int64_t d = 0; d < D; ++d) dst[d] += gate * src[d];
  }
}

// The MLP experts of a layer some of whose experts run on executors: send each executor its rows,
// run the local experts, wait, then combine every expert's outputs in expert order.
Status RunSplitMlp(const Layer& layer, int64_t l, const ExpertGroups& g, const float* x, int64_t D, Workspace& ws,
                   ThreadPool* pool, const MlpPlacement& placement, float* lora) {
  SplitScratch& s = ws.split;
  const std::vector<int32_t>& owner = placement.owner[static_cast<size_t>(l)];
  float* remote_in = s.remote_in.mutable_data_as<float>();
  float* remote_out = s.remote_out.mutable_data_as<float>();
  // Started calls are always finished, even when a later Start fails, so none is left in flight.
  auto finish_started = [&](Status st) {
    for (size_t ex = 0; ex < placement.executors.size(); ++ex) {
      if (!s.started[ex]) continue;
      s.started[ex] = false;
      Status fin = placement.executors[ex]->Finish();
      if (st.ok() && !fin.ok()) st = std::move(fin);
    }
    return st;
  };
  int64_t next = 0;  // rows gathered so far into remote_in
  for (size_t ex = 0; ex < placement.executors.size(); ++ex) {
    s.experts[ex].clear();
    s.counts[ex].clear();
    const int64_t first = next;
    for (int64_t e = 0; e < g.n_experts; ++e) {
      const int32_t c = g.count(e);
      if (c == 0 || owner[static_cast<size_t>(e)] != static_cast<int32_t>(ex)) continue;
      s.experts[ex].push_back(layer.mlp_ids[static_cast<size_t>(e)]);
      s.counts[ex].push_back(c);
      GatherRows(g, e, x, D, remote_in + next * D);
      s.expert_out[static_cast<size_t>(e)] = remote_out + next * D;
      next += c;
    }
    if (s.experts[ex].empty()) continue;
    const ExpertCall call{l, D, s.experts[ex], s.counts[ex], remote_in + first * D, remote_out + first * D};
    Status st = placement.executors[ex]->Start(call);
    if (!st.ok()) return finish_started(std::move(st));
    s.started[ex] = true;
  }
  // Local experts while the calls are in flight; each keeps its outputs at its pair offset.
  float* local_out = s.local_out.mutable_data_as<float>();
  float* mid = ws.pair_mid.mutable_data_as<float>();
  float* xin = ws.pair_in.mutable_data_as<float>();
  for (int64_t e = 0; e < g.n_experts; ++e) {
    const int64_t c = g.count(e);
    if (c == 0 || owner[static_cast<size_t>(e)] != MlpPlacement::kLocal) continue;
    float* y = local_out + static_cast<int64_t>(g.offsets[e]) * D;
    GatherRows(g, e, x, D, xin);
    layer.mlp[static_cast<size_t>(e)]->Forward(xin, c, y, mid, lora, pool);
    s.expert_out[static_cast<size_t>(e)] = y;
  }
  BRICK_RETURN_IF_ERROR(finish_started(Status::Ok()));
  float* h = ws.hidden.mutable_data_as<float>();
  for (int64_t e = 0; e < g.n_experts; ++e) {
    if (g.count(e) > 0) ScatterAddGated(g, e, s.expert_out[static_cast<size_t>(e)], D, h);
  }
  return Status::Ok();
}

}  // namespace

void RunAttentionBlock(const Layer& layer, int64_t l, const ModelConfig& cfg, const StepRows& rows,
                       KvCache* const* caches, Workspace& ws, ThreadPool* pool) {
  const int64_t n = rows.n, D = cfg.n_embd, A = cfg.att_hidden;
  const int k = cfg.k_att;
  float* h = ws.hidden.mutable_data_as<float>();
  float* x = ws.normed.mutable_data_as<float>();
  layer.ln1.Apply(h, n, x);
  // K = V = LN₁(h): the new rows join their sequence's cache before anyone attends.
  for (int64_t r = 0; r < n; ++r) {
    std::memcpy(caches[rows.seq[r]]->layer(l) + rows.pos[r] * D, x + r * D, static_cast<size_t>(D) * sizeof(float));
  }

  float* gates = ws.gates.mutable_data_as<float>();
  layer.attn_router.Route(x, n, k, gates, ws.ids.data(), ws.router.mutable_data_as<float>(), pool);
  ExpertGroups& g = ws.groups;
  g.Build(ws.ids.data(), gates, n, k, layer.attn_router.n_experts());

  const float scale = 1.0f / std::sqrt(static_cast<float>(cfg.head_dim()));
  float* lora = layer.lora_rank > 0 ? ws.LoraScratch(layer.lora_rank) : nullptr;
  float* xin = ws.pair_in.mutable_data_as<float>();
  float* q = ws.pair_mid.mutable_data_as<float>();
  float* o = ws.pair_mid2.mutable_data_as<float>();
  float* y = ws.pair_out.mutable_data_as<float>();
  int64_t* pos = ws.positions.data();
  for (int64_t e = 0; e < g.n_experts; ++e) {
    const int64_t c = g.count(e);
    if (c == 0) continue;  // empty groups are normal (G15)
    const AttentionExpert& expert = *layer.attn[static_cast<size_t>(e)];
    GatherRows(g, e, x, D, xin);
    kernels::MatmulPacked(xin, c, expert.wq(), q, pool);
    AddLoras(expert.wq_lora(), xin, c, q, lora, pool);  // an empty loop without loras
    // Attention per sequence: the pairs of one expert are in row order, so each sequence's rows
    // form one run.
    const int32_t* pair_rows = g.rows.data() + g.offsets[e];
    for (int64_t begin = 0; begin < c;) {
      const int32_t s = rows.seq[pair_rows[begin]];
      int64_t end = begin;
      while (end < c && rows.seq[pair_rows[end]] == s) {
        pos[end] = rows.pos[pair_rows[end]];
        ++end;
      }
      const float* kv = caches[s]->layer(l);
      if (end - begin == 1) {
        kernels::StickBreakDecode(q + begin * A, kv, kv, D, pos[begin] + 1, A, scale, o + begin * A);
      } else {
        kernels::StickBreakPrefill(q + begin * A, A, end - begin, pos + begin, kv, kv, D, A, scale, o + begin * A, A,
                                   ws.attn_scratch.mutable_data_as<float>(), pool);
      }
      begin = end;
    }
    kernels::MatmulPacked(o, c, expert.wo(), y, pool);
    AddLoras(expert.wo_lora(), o, c, y, lora, pool);
    ScatterAddGated(g, e, y, D, h);
  }
}

namespace {

// Marks in s.skip the layer's kept slots whose executor does not take calls now, asking each executor
// that owns one of them once. Returns how many slots stay routable.
int64_t MarkUnavailable(const MlpPlacement& placement, int64_t l, int64_t n_experts, SplitScratch& s) {
  constexpr uint8_t kUnasked = 2;
  std::fill(s.available.begin(), s.available.end(), kUnasked);
  const std::vector<int32_t>& owner = placement.owner[static_cast<size_t>(l)];
  int64_t routable = 0;
  for (int64_t e = 0; e < n_experts; ++e) {
    const int32_t o = owner[static_cast<size_t>(e)];
    bool skip = false;
    if (o != MlpPlacement::kLocal) {
      uint8_t& available = s.available[static_cast<size_t>(o)];
      if (available == kUnasked) available = placement.executors[static_cast<size_t>(o)]->Available() ? 1 : 0;
      skip = available == 0;
    }
    s.skip[static_cast<size_t>(e)] = skip;
    routable += !skip;
  }
  return routable;
}

}  // namespace

Status RunMlpBlock(const Layer& layer, int64_t l, const ModelConfig& cfg, int64_t n, Workspace& ws, ThreadPool* pool,
                   const MlpPlacement* placement) {
  const int64_t D = cfg.n_embd;
  const int64_t E = layer.mlp_router.n_experts();
  float* h = ws.hidden.mutable_data_as<float>();
  float* x = ws.normed.mutable_data_as<float>();
  layer.ln2.Apply(h, n, x);
  float* gates = ws.gates.mutable_data_as<float>();
  ExpertGroups& g = ws.groups;
  float* lora = layer.lora_rank > 0 ? ws.LoraScratch(layer.lora_rank) : nullptr;

  if (placement == nullptr || !placement->AnyRemote(l)) {
    ws.mlp_k = cfg.k_mlp;
    layer.mlp_router.Route(x, n, cfg.k_mlp, gates, ws.ids.data(), ws.router.mutable_data_as<float>(), pool);
    g.Build(ws.ids.data(), gates, n, cfg.k_mlp, E);
    float* xin = ws.pair_in.mutable_data_as<float>();
    float* mid = ws.pair_mid.mutable_data_as<float>();
    float* y = ws.pair_out.mutable_data_as<float>();
    for (int64_t e = 0; e < g.n_experts; ++e) {
      const int64_t c = g.count(e);
      if (c == 0) continue;
      GatherRows(g, e, x, D, xin);
      layer.mlp[static_cast<size_t>(e)]->Forward(xin, c, y, mid, lora, pool);
      ScatterAddGated(g, e, y, D, h);
    }
    return Status::Ok();
  }
  // Split: route among the experts whose executor is available. When a call fails and its executor
  // says it is unavailable now, route again without its experts (h is only updated once every call
  // succeeded); each round leaves out at least one more slot, so this ends.
  int64_t routable = MarkUnavailable(*placement, l, E, ws.split);
  while (true) {
    ws.mlp_k = static_cast<int>(std::min<int64_t>(cfg.k_mlp, routable));
    if (ws.mlp_k == 0) return Status::Ok();  // every expert of the layer is unreachable: the block adds nothing
    const uint8_t* skip = routable < E ? ws.split.skip.data() : nullptr;
    layer.mlp_router.Route(x, n, ws.mlp_k, gates, ws.ids.data(), ws.router.mutable_data_as<float>(), pool, skip);
    g.Build(ws.ids.data(), gates, n, ws.mlp_k, E);
    Status st = RunSplitMlp(layer, l, g, x, D, ws, pool, *placement, lora);
    if (st.ok()) return st;
    const int64_t now_routable = MarkUnavailable(*placement, l, E, ws.split);
    if (now_routable >= routable) return st;  // no executor stepped aside: the error fails the step
    routable = now_routable;
  }
}

Status RunExpertCallLocally(const Layer& layer, const ExpertCall& call, float* mid, float* lora) {
  int64_t row = 0;
  for (size_t i = 0; i < call.experts.size(); ++i) {
    const auto it = std::find(layer.mlp_ids.begin(), layer.mlp_ids.end(), call.experts[i]);
    if (it == layer.mlp_ids.end())
      return InvalidArgument("expert " + std::to_string(call.experts[i]) + " is not kept in this layer");
    const MlpExpert& expert = *layer.mlp[static_cast<size_t>(it - layer.mlp_ids.begin())];
    if (expert.lora_rank() > 0 && lora == nullptr)
      return InvalidArgument("expert " + std::to_string(call.experts[i]) + " carries a LoRA; it runs in its block");
    expert.Forward(call.rows + row * call.width, call.counts[i], call.out + row * call.width, mid, lora, nullptr);
    row += call.counts[i];
  }
  return Status::Ok();
}

}  // namespace brickrt
