// Registry: opening (paths, defaults, schema) and the read side — listing and resolving bricks and
// models, tags and the event log. Import lives in registry_import.cpp, payload loads in registry_load.cpp.
#include "registry/registry.h"

#include <cstdlib>
#include <filesystem>

#include "core/json.h"
#include "registry/registry_internal.h"

namespace brickrt {

namespace fs = std::filesystem;
using namespace registry_internal;

Registry::Registry(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Registry::~Registry() = default;

const std::string& Registry::path() const { return impl_->path; }
int Registry::schema_version() const { return impl_->schema_version; }

Result<std::unique_ptr<Registry>> Registry::Open(const std::string& path, const OpenOptions& opts) {
  if (path.empty()) return InvalidArgument("the registry path is empty");
  if (path != ":memory:") {
    std::error_code ec;
    const fs::file_status st = fs::status(path, ec);
    if (fs::is_directory(st)) return InvalidArgument(path + " is a directory, not a brickrt registry file");
    if (!fs::exists(st)) {
      if (!opts.create || opts.read_only) return NotFound("registry " + path + " does not exist");
      const fs::path parent = fs::path(path).parent_path();
      if (!parent.empty() && !fs::exists(parent, ec)) {
        fs::create_directories(parent, ec);
        if (ec)
          return IoError("cannot create the directory " + parent.string() + " for registry " + path + ": " +
                         ec.message());
      }
    }
  }
  auto impl = std::make_unique<Impl>();
  BRICK_ASSIGN_OR_RETURN(impl->db, sqlite::Db::Open(path, opts.create, opts.read_only));
  impl->path = path;
  impl->opts = opts;
  BRICK_RETURN_IF_ERROR(PrepareSchema(impl->db, opts, &impl->schema_version));
  return std::unique_ptr<Registry>(new Registry(std::move(impl)));
}

std::string Registry::DefaultPath() {
  const char* env = std::getenv("BRICK_REGISTRY");
  if (env != nullptr && *env != '\0') return env;
  const char* xdg = std::getenv("XDG_DATA_HOME");
  // XDG Base Directory spec: a relative XDG_DATA_HOME is invalid and must be ignored.
  if (xdg != nullptr && xdg[0] == '/') return std::string(xdg) + "/brickrt/registry.db";
  const char* home = std::getenv("HOME");
  if (home != nullptr && *home != '\0') return std::string(home) + "/.local/share/brickrt/registry.db";
  return "brickrt-registry.db";
}

Result<std::vector<BrickRecord>> Registry::ListBricks(const BrickFilter& filter) const {
  const sqlite::Db& db = impl_->db;
  // SQLite GLOB also treats '[' as a character class; the contract is '*' and '?' only, so a literal
  // '[' is escaped as "[[]".
  std::string glob;
  for (char c : filter.name_glob) glob += c == '[' ? std::string("[[]") : std::string(1, c);
  BRICK_ASSIGN_OR_RETURN(
      sqlite::Stmt st,
      db.Prepare(std::string(kBrickColumns) +
                 " WHERE (?1 = '' OR name GLOB ?1) AND (?2 IS NULL OR kind = ?2)"
                 " AND (?3 = 1 OR version = (SELECT MAX(v.version) FROM bricks v WHERE v.name = bricks.name))"
                 " ORDER BY name, version"));
  st.Bind(1, glob);
  if (filter.kind) {
    st.Bind(2, BrickKindName(*filter.kind));
  } else {
    st.BindNull(2);
  }
  st.Bind(3, int64_t{filter.all_versions ? 1 : 0});
  return ReadBrickRows(db, st);
}

namespace {

// "NAME@VERSION" -> (NAME, VERSION); "NAME" -> (NAME, nullopt). InvalidArgument for a bad version.
Result<std::pair<std::string, std::optional<int64_t>>> SplitVersion(const std::string& ref, const char* what) {
  const size_t at = ref.rfind('@');
  if (at == std::string::npos) return std::make_pair(ref, std::optional<int64_t>());
  const std::string v = ref.substr(at + 1);
  const bool digits = !v.empty() && v.size() <= 18 && v.find_first_not_of("0123456789") == std::string::npos;
  if (at == 0 || !digits || std::stoll(v) <= 0) {
    return InvalidArgument("bad " + std::string(what) + " reference '" + ref +
                           "': expected NAME or NAME@VERSION with a positive integer version");
  }
  return std::make_pair(ref.substr(0, at), std::optional<int64_t>(std::stoll(v)));
}

}  // namespace

Result<BrickRecord> Registry::GetBrick(const std::string& ref) const {
  const sqlite::Db& db = impl_->db;
  BRICK_ASSIGN_OR_RETURN(auto parts, SplitVersion(ref, "brick"));
  const auto& [name, version] = parts;
  BRICK_ASSIGN_OR_RETURN(std::optional<BrickRecord> latest, LatestBrick(db, name));
  if (latest) {
    if (!version || *version == latest->version) return std::move(*latest);
    BRICK_ASSIGN_OR_RETURN(sqlite::Stmt st, db.Prepare(std::string(kBrickColumns) + " WHERE name = ? AND version = ?"));
    st.Bind(1, name).Bind(2, *version);
    BRICK_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row)
      return NotFound("brick '" + ref + "' not found in registry " + db.path() + " (latest is " + latest->Ref() + ")");
    return ReadBrickRow(db, st);
  }
  // A model-relative name ("L3.mlp.E17"): accepted when exactly one model has it. Model names contain
  // no '/', so the relative part of a full name is everything after its first '/'.
  if (name.find('/') == std::string::npos) {
    BRICK_ASSIGN_OR_RETURN(sqlite::Stmt st, db.Prepare("SELECT DISTINCT name FROM bricks "
                                                       "WHERE substr(name, instr(name, '/') + 1) = ? ORDER BY name"));
    st.Bind(1, name);
    std::vector<std::string> full;
    for (;;) {
      BRICK_ASSIGN_OR_RETURN(bool row, st.Step());
      if (!row) break;
      full.push_back(st.Text(0));
    }
    if (full.size() == 1) return GetBrick(version ? full[0] + "@" + std::to_string(*version) : full[0]);
    if (full.size() > 1) {
      std::string list;
      for (const std::string& f : full) list += (list.empty() ? "" : ", ") + f;
      return InvalidArgument("brick name '" + name + "' is ambiguous: " + list + "; use the full name");
    }
  }
  return NotFound("brick '" + ref + "' not found in registry " + db.path());
}

Result<std::vector<ManifestRecord>> Registry::ListModels() const {
  const sqlite::Db& db = impl_->db;
  BRICK_ASSIGN_OR_RETURN(sqlite::Stmt st, db.Prepare("SELECT id FROM manifests ORDER BY name, version"));
  std::vector<ManifestRecord> out;
  for (;;) {
    BRICK_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    BRICK_ASSIGN_OR_RETURN(ManifestRecord m, ReadManifestById(db, st.Int64(0)));
    out.push_back(std::move(m));
  }
  return out;
}

Result<ManifestRecord> Registry::ResolveModel(const std::string& ref) const {
  const sqlite::Db& db = impl_->db;
  const size_t colon = ref.find(':');
  if (colon != std::string::npos) {
    const std::string name = ref.substr(0, colon), tag = ref.substr(colon + 1);
    if (name.empty() || tag.empty()) return InvalidArgument("bad model reference '" + ref + "': expected NAME:TAG");
    BRICK_ASSIGN_OR_RETURN(sqlite::Stmt st, db.Prepare("SELECT manifest_id FROM tags WHERE name = ? AND tag = ?"));
    st.Bind(1, name).Bind(2, tag);
    BRICK_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) return NotFound("model tag '" + ref + "' not found in registry " + db.path());
    return ReadManifestById(db, st.Int64(0));
  }
  BRICK_ASSIGN_OR_RETURN(auto parts, SplitVersion(ref, "model"));
  const auto& [name, version] = parts;
  BRICK_ASSIGN_OR_RETURN(sqlite::Stmt latest,
                         db.Prepare("SELECT id, version FROM manifests WHERE name = ? ORDER BY version DESC LIMIT 1"));
  latest.Bind(1, name);
  BRICK_ASSIGN_OR_RETURN(bool found, latest.Step());
  if (!found) return NotFound("model '" + ref + "' not found in registry " + db.path());
  if (!version || *version == latest.Int64(1)) return ReadManifestById(db, latest.Int64(0));
  BRICK_ASSIGN_OR_RETURN(sqlite::Stmt st, db.Prepare("SELECT id FROM manifests WHERE name = ? AND version = ?"));
  st.Bind(1, name).Bind(2, *version);
  BRICK_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) {
    return NotFound("model '" + ref + "' not found in registry " + db.path() + " (latest is " + name + "@" +
                    std::to_string(latest.Int64(1)) + ")");
  }
  return ReadManifestById(db, st.Int64(0));
}

Status Registry::Tag(const std::string& model_ref, const std::string& tag) {
  BRICK_RETURN_IF_ERROR(CheckName(tag, "tag"));
  // An all-digit tag would read like a version to people ("molm:2" next to "molm@2").
  if (tag.find_first_not_of("0123456789") == std::string::npos) {
    return InvalidArgument("tag '" + tag + "' is all digits; use a name (versions are NAME@VERSION)");
  }
  const sqlite::Db& db = impl_->db;
  BRICK_ASSIGN_OR_RETURN(sqlite::Transaction tx, sqlite::Transaction::Begin(db));
  BRICK_ASSIGN_OR_RETURN(ManifestRecord m, ResolveModel(model_ref));
  BRICK_ASSIGN_OR_RETURN(sqlite::Stmt old, db.Prepare("SELECT m.version FROM tags t JOIN manifests m "
                                                      "ON m.id = t.manifest_id WHERE t.name = ? AND t.tag = ?"));
  old.Bind(1, m.name).Bind(2, tag);
  BRICK_ASSIGN_OR_RETURN(bool had, old.Step());
  JsonValue detail = JsonValue::MakeObject();
  detail.Set("manifest", JsonValue::String(m.Ref()));
  if (had) detail.Set("previous", JsonValue::String(m.name + "@" + std::to_string(old.Int64(0))));
  BRICK_ASSIGN_OR_RETURN(sqlite::Stmt st,
                         db.Prepare("INSERT INTO tags (name, tag, manifest_id) VALUES (?, ?, ?) "
                                    "ON CONFLICT (name, tag) DO UPDATE SET manifest_id = excluded.manifest_id"));
  st.Bind(1, m.name).Bind(2, tag).Bind(3, m.id);
  BRICK_RETURN_IF_ERROR(st.Run());
  BRICK_RETURN_IF_ERROR(LogEvent(db, "tag", m.name + ":" + tag, DumpJson(detail)));
  return tx.Commit();
}

Result<std::vector<Registry::Event>> Registry::Events(int64_t limit) const {
  BRICK_ASSIGN_OR_RETURN(
      sqlite::Stmt st, impl_->db.Prepare("SELECT id, at, kind, subject, detail FROM events ORDER BY id DESC LIMIT ?"));
  st.Bind(1, limit);
  std::vector<Event> out;
  for (;;) {
    BRICK_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    out.push_back(Event{st.Int64(0), st.Text(1), st.Text(2), st.Text(3), st.Text(4)});
  }
  return out;
}

}  // namespace brickrt
