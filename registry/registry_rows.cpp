// Row <-> record conversions shared by the registry's source files: brick and manifest rows, the
// stored config JSON, names, times and the event log.
#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <ctime>

#include "core/json.h"
#include "registry/registry_internal.h"

namespace brickrt {

const char* VisibilityName(Visibility v) { return v == Visibility::kPrivate ? "private" : "shared"; }

const char* ManifestKindName(ManifestKind k) { return k == ManifestKind::kPlugin ? "plugin" : "model"; }

std::optional<ManifestKind> ParseManifestKind(std::string_view s) {
  if (s == "model") return ManifestKind::kModel;
  if (s == "plugin") return ManifestKind::kPlugin;
  return std::nullopt;
}

std::optional<Visibility> ParseVisibility(std::string_view s) {
  if (s == "shared") return Visibility::kShared;
  if (s == "private") return Visibility::kPrivate;
  return std::nullopt;
}

std::string BrickRecord::Ref() const { return name + "@" + std::to_string(version); }

std::string BrickRecord::RelativeName() const {
  const size_t slash = name.find('/');
  return slash == std::string::npos ? name : name.substr(slash + 1);
}
std::string ManifestRecord::Ref() const { return name + "@" + std::to_string(version); }

namespace registry_internal {

std::string NowUtc() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t secs = std::chrono::system_clock::to_time_t(now);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[96];  // room for any int the compiler cannot bound (-Wformat-truncation)
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buf;
}

namespace {

// The config's per-layer removed-expert lists with their JSON keys (submodels, issue #4).
template <typename Config>
auto RemovedLists(Config& c) {
  return std::array{std::pair{"att_removed", &c.att_removed}, std::pair{"mlp_removed", &c.mlp_removed}};
}

JsonValue IntArray(const std::vector<int64_t>& v) {
  JsonValue a = JsonValue::MakeArray();
  for (int64_t x : v) a.Append(JsonValue::Int(x));
  return a;
}

}  // namespace

std::string ConfigToJson(const ModelConfig& c) {
  JsonValue o = JsonValue::MakeObject();
  o.Set("n_layer", JsonValue::Int(c.n_layer));
  o.Set("n_embd", JsonValue::Int(c.n_embd));
  o.Set("vocab_size", JsonValue::Int(c.vocab_size));
  o.Set("att_hidden", JsonValue::Int(c.att_hidden));
  o.Set("n_head", JsonValue::Int(c.n_head));
  o.Set("ffd_hidden", JsonValue::Int(c.ffd_hidden));
  o.Set("gating_size", JsonValue::Int(c.gating_size));
  o.Set("k_att", JsonValue::Int(c.k_att));
  o.Set("k_mlp", JsonValue::Int(c.k_mlp));
  o.Set("n_att_experts", IntArray(c.n_att_experts));
  o.Set("n_mlp_experts", IntArray(c.n_mlp_experts));
  o.Set("layer_norm_eps", JsonValue::Number(static_cast<double>(c.layer_norm_eps)));
  o.Set("bos_token_id", JsonValue::Int(c.bos_token_id));
  o.Set("eos_token_id", JsonValue::Int(c.eos_token_id));
  o.Set("tie_word_embeddings", JsonValue::Bool(c.tie_word_embeddings));
  o.Set("dtype", JsonValue::String(DTypeName(c.dtype)));
  // Written only for submodels, so a full model's config string (compared on re-import) is unchanged.
  if (c.HasRemovals()) {
    for (const auto& [key, lists] : RemovedLists(c)) {
      JsonValue a = JsonValue::MakeArray();
      for (const auto& l : *lists) a.Append(IntArray(l));
      o.Set(key, std::move(a));
    }
  }
  return DumpJson(o);
}

Result<ModelConfig> ConfigFromJson(std::string_view json, const std::string& what) {
  auto parsed = ParseJson(json);
  if (!parsed.ok()) return Corrupt(what + ": stored config is not valid JSON: " + parsed.status().message());
  const JsonValue& o = *parsed;
  Status bad;
  auto get_int = [&](const char* key) -> int64_t {
    const JsonValue* v = o.Find(key);
    if (v == nullptr || !v->as_int64()) {
      if (bad.ok()) bad = Corrupt(what + ": stored config lacks integer '" + key + "'");
      return 0;
    }
    return *v->as_int64();
  };
  auto get_ints = [&](const char* key) {
    std::vector<int64_t> out;
    const JsonValue* v = o.Find(key);
    if (v == nullptr || !v->is_array()) {
      if (bad.ok()) bad = Corrupt(what + ": stored config lacks array '" + key + "'");
      return out;
    }
    for (const JsonValue& x : v->as_array()) {
      if (!x.as_int64()) {
        if (bad.ok()) bad = Corrupt(what + ": stored config '" + key + "' holds a non-integer");
        return out;
      }
      out.push_back(*x.as_int64());
    }
    return out;
  };
  ModelConfig c;
  c.n_layer = get_int("n_layer");
  c.n_embd = get_int("n_embd");
  c.vocab_size = get_int("vocab_size");
  c.att_hidden = get_int("att_hidden");
  c.n_head = get_int("n_head");
  c.ffd_hidden = get_int("ffd_hidden");
  c.gating_size = get_int("gating_size");
  c.k_att = static_cast<int>(get_int("k_att"));
  c.k_mlp = static_cast<int>(get_int("k_mlp"));
  c.n_att_experts = get_ints("n_att_experts");
  c.n_mlp_experts = get_ints("n_mlp_experts");
  c.bos_token_id = get_int("bos_token_id");
  c.eos_token_id = get_int("eos_token_id");
  const JsonValue* eps = o.Find("layer_norm_eps");
  const JsonValue* tie = o.Find("tie_word_embeddings");
  const JsonValue* dt = o.Find("dtype");
  std::optional<DType> dtype = dt != nullptr && dt->is_string() ? ParseDType(dt->as_string()) : std::nullopt;
  if (!bad.ok()) return bad;
  if (eps == nullptr || !eps->is_number() || tie == nullptr || !tie->is_bool() || !dtype) {
    return Corrupt(what + ": stored config lacks layer_norm_eps, tie_word_embeddings or dtype");
  }
  c.layer_norm_eps = static_cast<float>(eps->as_double());
  c.tie_word_embeddings = tie->as_bool();
  c.dtype = *dtype;
  for (const auto& [key, lists] : RemovedLists(c)) {
    const JsonValue* v = o.Find(key);
    if (v == nullptr) continue;
    if (!v->is_array() || static_cast<int64_t>(v->as_array().size()) != c.n_layer)
      return Corrupt(what + ": stored config '" + key + "' is not a per-layer array");
    const auto& counts = std::string_view(key) == "att_removed" ? c.n_att_experts : c.n_mlp_experts;
    for (const JsonValue& layer : v->as_array()) {
      const size_t l = lists->size();
      std::vector<int64_t>& ids = lists->emplace_back();
      if (!layer.is_array()) return Corrupt(what + ": stored config '" + key + "' holds a non-array");
      for (const JsonValue& x : layer.as_array()) {
        // Ascending, distinct and below the layer's count: KeptExperts and IsRemoved rely on it.
        if (!x.as_int64() || *x.as_int64() < 0 || l >= counts.size() || *x.as_int64() >= counts[l] ||
            (!ids.empty() && *x.as_int64() <= ids.back())) {
          return Corrupt(what + ": stored config '" + key + "' of layer " + std::to_string(l) +
                         " is not an ascending list of expert ids of that layer");
        }
        ids.push_back(*x.as_int64());
      }
    }
  }
  return c;
}

std::string ShapeToJson(const Shape& shape) { return DumpJson(IntArray(shape)); }

namespace {

Status ReadTensors(const sqlite::Db& db, BrickRecord* b) {
  BRICK_ASSIGN_OR_RETURN(sqlite::Stmt st, db.Prepare("SELECT name, dtype, shape, offset, bytes FROM brick_tensors "
                                                     "WHERE brick_id = ? ORDER BY ord"));
  st.Bind(1, b->id);
  for (;;) {
    BRICK_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    TensorRecord t;
    t.name = st.Text(0);
    const auto dtype = ParseDType(st.Text(1));
    auto shape = ParseJson(st.Text(2));
    if (!dtype || !shape.ok() || !shape->is_array()) {
      return Corrupt("brick " + b->Ref() + ": tensor '" + t.name + "' has a bad dtype or shape record");
    }
    t.dtype = *dtype;
    for (const JsonValue& d : shape->as_array()) {
      if (!d.as_int64() || *d.as_int64() < 0)
        return Corrupt("brick " + b->Ref() + ": tensor '" + t.name + "' has a bad shape");
      t.shape.push_back(*d.as_int64());
    }
    t.offset = st.Int64(3);
    t.bytes = st.Int64(4);
    b->tensors.push_back(std::move(t));
  }
  return Status::Ok();
}

}  // namespace

Result<std::vector<BrickRecord>> ReadBrickRows(const sqlite::Db& db, sqlite::Stmt& st) {
  std::vector<BrickRecord> out;
  for (;;) {
    BRICK_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) return out;
    BRICK_ASSIGN_OR_RETURN(BrickRecord b, ReadBrickRow(db, st));
    out.push_back(std::move(b));
  }
}

Result<BrickRecord> ReadBrickRow(const sqlite::Db& db, const sqlite::Stmt& st) {
  BrickRecord b;
  b.id = st.Int64(0);
  b.name = st.Text(1);
  b.version = st.Int64(2);
  const auto kind = ParseBrickKind(st.Text(3));
  const auto vis = ParseVisibility(st.Text(8));
  if (!kind || !vis) return Corrupt("brick " + b.Ref() + ": unknown kind '" + st.Text(3) + "' or visibility");
  b.kind = *kind;
  b.layer = static_cast<int>(st.Int64(4));
  b.index = static_cast<int>(st.Int64(5));
  b.digest = st.Text(6);
  b.bytes = st.Int64(7);
  b.visibility = *vis;
  if (!st.IsNull(9)) b.parent_id = st.Int64(9);
  b.created_at = st.Text(10);
  b.metadata_json = st.Text(11);
  BRICK_RETURN_IF_ERROR(ReadTensors(db, &b));
  return b;
}

Result<BrickRecord> ReadBrickById(const sqlite::Db& db, int64_t id) {
  BRICK_ASSIGN_OR_RETURN(sqlite::Stmt st, db.Prepare(std::string(kBrickColumns) + " WHERE id = ?"));
  st.Bind(1, id);
  BRICK_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return NotFound("brick id " + std::to_string(id) + " not found in registry " + db.path());
  return ReadBrickRow(db, st);
}

Result<std::optional<BrickRecord>> LatestBrick(const sqlite::Db& db, const std::string& name) {
  BRICK_ASSIGN_OR_RETURN(sqlite::Stmt st,
                         db.Prepare(std::string(kBrickColumns) + " WHERE name = ? ORDER BY version DESC LIMIT 1"));
  st.Bind(1, name);
  BRICK_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return std::optional<BrickRecord>();
  BRICK_ASSIGN_OR_RETURN(BrickRecord b, ReadBrickRow(db, st));
  return std::optional<BrickRecord>(std::move(b));
}

Result<ManifestRecord> ReadManifestById(const sqlite::Db& db, int64_t id) {
  BRICK_ASSIGN_OR_RETURN(sqlite::Stmt st,
                         db.Prepare("SELECT name, version, config, created_at, source, kind, base FROM manifests "
                                    "WHERE id = ?"));
  st.Bind(1, id);
  BRICK_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return NotFound("manifest id " + std::to_string(id) + " not found in registry " + db.path());
  ManifestRecord m;
  m.id = id;
  m.name = st.Text(0);
  m.version = st.Int64(1);
  BRICK_ASSIGN_OR_RETURN(m.config, ConfigFromJson(st.Text(2), "model " + m.Ref()));
  m.created_at = st.Text(3);
  m.source = st.Text(4);
  const auto kind = ParseManifestKind(st.Text(5));
  if (!kind) return Corrupt("model " + m.Ref() + ": unknown manifest kind '" + st.Text(5) + "'");
  m.kind = *kind;
  m.base = st.Text(6);

  BRICK_ASSIGN_OR_RETURN(sqlite::Stmt bricks, db.Prepare("SELECT brick_id, scale FROM manifest_bricks "
                                                         "WHERE manifest_id = ? ORDER BY ord"));
  bricks.Bind(1, id);
  for (;;) {
    BRICK_ASSIGN_OR_RETURN(bool more, bricks.Step());
    if (!more) break;
    m.brick_ids.push_back(bricks.Int64(0));
    if (!bricks.IsNull(1)) m.plugin_scales[bricks.Int64(0)] = bricks.Double(1);
  }
  BRICK_ASSIGN_OR_RETURN(sqlite::Stmt tags, db.Prepare("SELECT tag FROM tags WHERE manifest_id = ? ORDER BY tag"));
  tags.Bind(1, id);
  for (;;) {
    BRICK_ASSIGN_OR_RETURN(bool more, tags.Step());
    if (!more) break;
    m.tags.push_back(tags.Text(0));
  }
  BRICK_ASSIGN_OR_RETURN(m.tokenizer, ReadTokenizerRows(db, id));
  return m;
}

Status LogEvent(const sqlite::Db& db, std::string_view kind, std::string_view subject, std::string_view detail) {
  BRICK_ASSIGN_OR_RETURN(sqlite::Stmt st,
                         db.Prepare("INSERT INTO events (at, kind, subject, detail) VALUES (?, ?, ?, ?)"));
  st.Bind(1, NowUtc()).Bind(2, kind).Bind(3, subject).Bind(4, detail);
  return st.Run();
}

Status CheckName(std::string_view name, const char* what) {
  if (name.empty()) return InvalidArgument(std::string(what) + " is empty");
  for (char ch : name) {
    if (ch == '/' || ch == '@' || ch == ':' || std::isspace(static_cast<unsigned char>(ch)) ||
        std::iscntrl(static_cast<unsigned char>(ch))) {
      return InvalidArgument(std::string(what) + " '" + std::string(name) +
                             "' may not contain '/', '@', ':' or whitespace (they separate references)");
    }
  }
  return Status::Ok();
}

}  // namespace registry_internal
}  // namespace brickrt
