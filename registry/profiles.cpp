// Expert profiles: stored as one row per name (table `profiles`, schema v4) with the per-layer counts
// as JSON, and the threshold rule that turns a profile into removed experts.
#include "registry/profiles.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/json.h"
#include "registry/registry_internal.h"

namespace brickrt {
namespace {

using registry_internal::CheckName;

}  // namespace

JsonValue ProfileLayersToJson(const std::vector<LayerProfile>& layers) {
  JsonValue arr = JsonValue::MakeArray();
  for (const LayerProfile& l : layers) {
    JsonValue o = JsonValue::MakeObject();
    o.Set("layer", JsonValue::Int(l.layer));
    o.Set("kind", JsonValue::String(l.attention ? "attn" : "mlp"));
    JsonValue counts = JsonValue::MakeArray(), mass = JsonValue::MakeArray();
    for (int64_t c : l.counts) counts.Append(JsonValue::Int(c));
    for (double g : l.gate_mass) mass.Append(JsonValue::Number(g));
    o.Set("counts", std::move(counts));
    o.Set("gate_mass", std::move(mass));
    arr.Append(std::move(o));
  }
  return arr;
}

namespace {

Result<std::vector<LayerProfile>> LayersFromJson(const std::string& text, const std::string& what) {
  auto bad = [&] { return Corrupt("profile " + what + ": stored layers are malformed"); };
  auto parsed = ParseJson(text);
  if (!parsed.ok() || !parsed->is_array()) return bad();
  std::vector<LayerProfile> out;
  for (const JsonValue& o : parsed->as_array()) {
    if (!o.is_object()) return bad();
    const JsonValue *layer = o.Find("layer"), *kind = o.Find("kind"), *counts = o.Find("counts"),
                    *mass = o.Find("gate_mass");
    if (!layer || !layer->as_int64() || !kind || !kind->is_string() || !counts || !counts->is_array() || !mass ||
        !mass->is_array() || mass->as_array().size() != counts->as_array().size())
      return bad();
    LayerProfile l;
    l.layer = *layer->as_int64();
    l.attention = kind->as_string() == "attn";
    for (const JsonValue& c : counts->as_array()) {
      if (!c.as_int64()) return bad();
      l.counts.push_back(*c.as_int64());
    }
    for (const JsonValue& g : mass->as_array()) {
      if (!g.is_number()) return bad();
      l.gate_mass.push_back(g.as_double());
    }
    out.push_back(std::move(l));
  }
  return out;
}

constexpr const char* kProfileColumns =
    "SELECT p.name, p.manifest_id, m.name || '@' || m.version, p.data_path, p.data_digest, p.tokens, p.created_at, "
    "p.layers FROM profiles p JOIN manifests m ON m.id = p.manifest_id";

Result<ExpertProfile> ReadProfileRow(const sqlite::Stmt& st) {
  ExpertProfile p;
  p.name = st.Text(0);
  p.manifest_id = st.Int64(1);
  p.manifest = st.Text(2);
  p.data_path = st.Text(3);
  p.data_digest = st.Text(4);
  p.tokens = st.Int64(5);
  p.created_at = st.Text(6);
  BRICK_ASSIGN_OR_RETURN(p.layers, LayersFromJson(st.Text(7), p.name));
  return p;
}

}  // namespace

Result<ExpertProfile> Registry::SaveProfile(const ExpertProfile& p) {
  BRICK_RETURN_IF_ERROR(CheckName(p.name, "profile name"));
  const sqlite::Db& db = impl_->db;
  BRICK_ASSIGN_OR_RETURN(sqlite::Transaction tx, sqlite::Transaction::Begin(db));
  {
    BRICK_ASSIGN_OR_RETURN(sqlite::Stmt m, db.Prepare("SELECT count(*) FROM manifests WHERE id = ?"));
    m.Bind(1, p.manifest_id);
    BRICK_ASSIGN_OR_RETURN(bool row, m.Step());
    if (!row || m.Int64(0) == 0) {
      return InvalidArgument("profile " + p.name + ": manifest id " + std::to_string(p.manifest_id) +
                             " is not in registry " + db.path());
    }
  }
  BRICK_ASSIGN_OR_RETURN(sqlite::Stmt del, db.Prepare("DELETE FROM profiles WHERE name = ?"));
  del.Bind(1, p.name);
  BRICK_RETURN_IF_ERROR(del.Run());
  BRICK_ASSIGN_OR_RETURN(
      sqlite::Stmt ins,
      db.Prepare("INSERT INTO profiles (name, manifest_id, data_path, data_digest, tokens, created_at, layers) "
                 "VALUES (?, ?, ?, ?, ?, ?, ?)"));
  ins.Bind(1, p.name).Bind(2, p.manifest_id).Bind(3, p.data_path).Bind(4, p.data_digest).Bind(5, p.tokens);
  ins.Bind(6, registry_internal::NowUtc()).Bind(7, DumpJson(ProfileLayersToJson(p.layers)));
  BRICK_RETURN_IF_ERROR(ins.Run());
  JsonValue detail = JsonValue::MakeObject();
  detail.Set("manifest_id", JsonValue::Int(p.manifest_id));
  detail.Set("data_digest", JsonValue::String(p.data_digest));
  detail.Set("tokens", JsonValue::Int(p.tokens));
  BRICK_RETURN_IF_ERROR(registry_internal::LogEvent(db, "profile", p.name, DumpJson(detail)));
  BRICK_RETURN_IF_ERROR(tx.Commit());
  return GetProfile(p.name);
}

Result<ExpertProfile> Registry::GetProfile(const std::string& name) const {
  const sqlite::Db& db = impl_->db;
  BRICK_ASSIGN_OR_RETURN(sqlite::Stmt st, db.Prepare(std::string(kProfileColumns) + " WHERE p.name = ?"));
  st.Bind(1, name);
  BRICK_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) {
    return NotFound("no profile '" + name + "' in registry " + db.path() +
                    " (make one with `brick profile MODEL --data FILE --save " + name + "`)");
  }
  return ReadProfileRow(st);
}

Result<std::vector<ExpertProfile>> Registry::ListProfiles() const {
  const sqlite::Db& db = impl_->db;
  BRICK_ASSIGN_OR_RETURN(sqlite::Stmt st, db.Prepare(std::string(kProfileColumns) + " ORDER BY p.name"));
  std::vector<ExpertProfile> out;
  for (;;) {
    BRICK_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) return out;
    BRICK_ASSIGN_OR_RETURN(ExpertProfile p, ReadProfileRow(st));
    out.push_back(std::move(p));
  }
}

Result<ProfileCut> ExpertsUnderThreshold(const ExpertProfile& p, const ModelConfig& cfg, bool attention,
                                         double threshold, int top_k) {
  if (!(threshold >= 0.0 && threshold <= 1.0)) {
    return InvalidArgument("threshold must be in [0, 1] (a fraction of the layer's busiest expert), got " +
                           std::to_string(threshold));
  }
  if (top_k < 1) return InvalidArgument("top_k must be >= 1");
  const std::string what = attention ? "attention" : "MLP";
  ProfileCut cut;
  cut.removed.assign(static_cast<size_t>(cfg.n_layer), {});
  for (int64_t l = 0; l < cfg.n_layer; ++l) {
    const LayerProfile* lp = nullptr;
    for (const LayerProfile& x : p.layers)
      if (x.layer == l && x.attention == attention) lp = &x;
    const int64_t n = (attention ? cfg.n_att_experts : cfg.n_mlp_experts)[static_cast<size_t>(l)];
    if (lp == nullptr || static_cast<int64_t>(lp->counts.size()) != n) {
      return InvalidArgument("profile " + p.name + " (measured on " + p.manifest + ") does not fit this model: layer " +
                             std::to_string(l) + " has " + std::to_string(n) + " " + what + " experts, the profile " +
                             (lp == nullptr ? std::string("has no such layer")
                                            : "counted " + std::to_string(lp->counts.size())));
    }
    const std::vector<int64_t> kept = cfg.KeptExpertIds(attention, l);
    int64_t max_count = 0;
    for (int64_t e : kept) max_count = std::max(max_count, lp->counts[static_cast<size_t>(e)]);
    std::vector<int64_t> stay, gone;
    for (int64_t e : kept) {
      const double freq = max_count > 0 ? static_cast<double>(lp->counts[static_cast<size_t>(e)]) / max_count : 0.0;
      (freq < threshold ? gone : stay).push_back(e);
    }
    if (static_cast<int64_t>(stay.size()) < top_k && !gone.empty()) {
      // Keep the top_k most chosen: by count, descending; ties to the lower id.
      std::vector<int64_t> by_use = kept;
      std::stable_sort(by_use.begin(), by_use.end(), [&](int64_t a, int64_t b) {
        return lp->counts[static_cast<size_t>(a)] > lp->counts[static_cast<size_t>(b)];
      });
      by_use.resize(std::min<size_t>(by_use.size(), static_cast<size_t>(top_k)));
      std::sort(by_use.begin(), by_use.end());
      std::string ids;
      for (int64_t e : by_use) ids += (ids.empty() ? "" : ",") + std::to_string(e);
      cut.notes.push_back("layer " + std::to_string(l) + ": threshold " + std::to_string(threshold).substr(0, 6) +
                          " would keep " + std::to_string(stay.size()) + " " + what + " expert(s), fewer than top_k " +
                          std::to_string(top_k) + "; keeping the " + std::to_string(by_use.size()) +
                          " most chosen (" + ids + ")");
      gone.clear();
      for (int64_t e : kept)
        if (!std::binary_search(by_use.begin(), by_use.end(), e)) gone.push_back(e);
    }
    cut.removed[static_cast<size_t>(l)] = std::move(gone);
  }
  return cut;
}

}  // namespace brickrt
