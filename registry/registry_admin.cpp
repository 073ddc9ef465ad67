// Registry administration: removing bricks and manifests, dropping unreferenced blobs, changing
// visibility, and exporting a manifest back to an HF checkpoint. Each write is one transaction.
#include <filesystem>
#include <map>
#include <set>

#include "core/json.h"
#include "registry/compact.h"
#include "registry/hf_checkpoint.h"
#include "registry/registry_internal.h"

namespace brickrt {

namespace fs = std::filesystem;
using namespace registry_internal;

namespace {

JsonValue StringArray(const std::vector<std::string>& v) {
  JsonValue a = JsonValue::MakeArray();
  for (const std::string& s : v) a.Append(JsonValue::String(s));
  return a;
}

// "NAME@VERSION" -> version; "NAME" -> nullopt. InvalidArgument for a version that is not a positive integer.
Result<std::optional<int64_t>> ParseVersion(const std::string& ref, std::string* name) {
  const size_t at = ref.rfind('@');
  *name = ref.substr(0, at);
  if (at == std::string::npos) return std::optional<int64_t>();
  const std::string v = ref.substr(at + 1);
  const bool digits = !v.empty() && v.size() <= 18 && v.find_first_not_of("0123456789") == std::string::npos;
  if (at == 0 || !digits || std::stoll(v) <= 0)
    return InvalidArgument("bad reference '" + ref +
                           "': expected NAME or NAME@VERSION with a positive integer version");
  return std::optional<int64_t>(std::stoll(v));
}

Result<std::vector<BrickRecord>> BricksNamed(const sqlite::Db& db, const std::string& name,
                                             std::optional<int64_t> version) {
  BRICK_ASSIGN_OR_RETURN(
      sqlite::Stmt st,
      db.Prepare(std::string(kBrickColumns) + " WHERE name = ?1 AND (?2 IS NULL OR version = ?2) ORDER BY version"));
  st.Bind(1, name);
  if (version) {
    st.Bind(2, *version);
  } else {
    st.BindNull(2);
  }
  return ReadBrickRows(db, st);
}

// Ids of the manifests that list this brick, ordered by name and version.
Result<std::vector<int64_t>> ManifestsUsing(const sqlite::Db& db, int64_t brick_id) {
  BRICK_ASSIGN_OR_RETURN(sqlite::Stmt st, db.Prepare("SELECT DISTINCT m.id, m.name, m.version FROM manifest_bricks mb "
                                                     "JOIN manifests m ON m.id = mb.manifest_id WHERE mb.brick_id = ? "
                                                     "ORDER BY m.name, m.version"));
  st.Bind(1, brick_id);
  std::vector<int64_t> out;
  for (;;) {
    BRICK_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    out.push_back(st.Int64(0));
  }
  return out;
}

// Deletes one manifest and its tags (manifest_bricks rows go by ON DELETE CASCADE).
Status DeleteManifest(const sqlite::Db& db, const ManifestRecord& m, RemoveResult* res) {
  // Submodels and plugins name their base by ref; a later import could reuse this version number for
  // other weights, so the base stays while anything names it (even with --force).
  BRICK_ASSIGN_OR_RETURN(sqlite::Stmt deps, db.Prepare("SELECT name || '@' || version FROM manifests WHERE base = ? "
                                                       "ORDER BY name, version"));
  deps.Bind(1, m.Ref());
  std::string list;
  for (;;) {
    BRICK_ASSIGN_OR_RETURN(bool row, deps.Step());
    if (!row) break;
    list += (list.empty() ? "" : ", ") + deps.Text(0);
  }
  if (!list.empty()) {
    return InvalidArgument("model " + m.Ref() + " is the base of " + list + "; remove " +
                           (list.find(',') == std::string::npos ? "it" : "them") + " first");
  }
  for (const std::string& t : m.tags) res->tags.push_back(m.name + ":" + t);
  BRICK_ASSIGN_OR_RETURN(sqlite::Stmt tags, db.Prepare("DELETE FROM tags WHERE manifest_id = ?"));
  tags.Bind(1, m.id);
  BRICK_RETURN_IF_ERROR(tags.Run());
  BRICK_ASSIGN_OR_RETURN(sqlite::Stmt st, db.Prepare("DELETE FROM manifests WHERE id = ?"));
  st.Bind(1, m.id);
  BRICK_RETURN_IF_ERROR(st.Run());
  res->manifests.push_back(m.Ref());
  return Status::Ok();
}

// Deletes one brick version (its tensor rows go by ON DELETE CASCADE); versions derived from it get
// its parent instead, so the parent_id foreign key holds and lineage skips the removed version.
Status DeleteBrick(const sqlite::Db& db, const BrickRecord& b, RemoveResult* res) {
  BRICK_ASSIGN_OR_RETURN(sqlite::Stmt relink, db.Prepare("UPDATE bricks SET parent_id = ? WHERE parent_id = ?"));
  if (b.parent_id) {
    relink.Bind(1, *b.parent_id);
  } else {
    relink.BindNull(1);
  }
  relink.Bind(2, b.id);
  BRICK_RETURN_IF_ERROR(relink.Run());
  BRICK_ASSIGN_OR_RETURN(sqlite::Stmt st, db.Prepare("DELETE FROM bricks WHERE id = ?"));
  st.Bind(1, b.id);
  BRICK_RETURN_IF_ERROR(st.Run());
  res->bricks.push_back(b.Ref());
  return Status::Ok();
}

Result<int64_t> DbBytes(const sqlite::Db& db) {
  BRICK_ASSIGN_OR_RETURN(int64_t pages, db.QueryInt("PRAGMA page_count"));
  BRICK_ASSIGN_OR_RETURN(int64_t page, db.QueryInt("PRAGMA page_size"));
  return pages * page;
}

Result<int64_t> FreeBytes(const sqlite::Db& db) {
  BRICK_ASSIGN_OR_RETURN(int64_t pages, db.QueryInt("PRAGMA freelist_count"));
  BRICK_ASSIGN_OR_RETURN(int64_t page, db.QueryInt("PRAGMA page_size"));
  return pages * page;
}

}  // namespace

Result<std::vector<BrickRecord>> Registry::ManifestBricks(const ManifestRecord& manifest) const {
  std::vector<BrickRecord> out;
  out.reserve(manifest.brick_ids.size());
  for (int64_t id : manifest.brick_ids) {
    auto rec = ReadBrickById(impl_->db, id);
    if (!rec.ok()) return rec.status().WithContext("model " + manifest.Ref());
    out.push_back(std::move(rec).value());
  }
  return out;
}

Result<RemoveResult> Registry::Remove(const std::string& ref, const RemoveOptions& opts) {
  const sqlite::Db& db = impl_->db;
  std::string name;
  BRICK_ASSIGN_OR_RETURN(std::optional<int64_t> version, ParseVersion(ref, &name));
  BRICK_ASSIGN_OR_RETURN(sqlite::Transaction tx, sqlite::Transaction::Begin(db));
  RemoveResult res;
  if (name.find('/') == std::string::npos) {
    if (name.find(':') != std::string::npos || !version) {
      return InvalidArgument("brick rm '" + ref +
                             "': give the manifest version to remove (MODEL@VERSION; `brick models` lists them), "
                             "or a full brick name (MODEL/PART)");
    }
    BRICK_ASSIGN_OR_RETURN(ManifestRecord m, ResolveModel(ref));
    BRICK_RETURN_IF_ERROR(DeleteManifest(db, m, &res));
  } else {
    BRICK_ASSIGN_OR_RETURN(std::vector<BrickRecord> bricks, BricksNamed(db, name, version));
    if (bricks.empty()) return NotFound("brick '" + ref + "' not found in registry " + db.path());
    // Every manifest that uses any of the bricks, each once, in name/version order.
    std::vector<int64_t> users;
    std::set<int64_t> seen;
    for (const BrickRecord& b : bricks) {
      BRICK_ASSIGN_OR_RETURN(std::vector<int64_t> ids, ManifestsUsing(db, b.id));
      for (int64_t id : ids)
        if (seen.insert(id).second) users.push_back(id);
    }
    std::vector<ManifestRecord> manifests;
    for (int64_t id : users) {
      BRICK_ASSIGN_OR_RETURN(ManifestRecord m, ReadManifestById(db, id));
      manifests.push_back(std::move(m));
    }
    if (!manifests.empty() && !opts.force) {
      std::string list;
      for (const ManifestRecord& m : manifests) list += (list.empty() ? "" : ", ") + m.Ref();
      return InvalidArgument("brick '" + ref + "' is used by model " + list + "; remove " +
                             (manifests.size() == 1 ? "that manifest" : "those manifests") +
                             " first (brick rm MODEL@VERSION), or pass --force to remove " +
                             (manifests.size() == 1 ? "it" : "them") + " along with the brick");
    }
    for (const ManifestRecord& m : manifests) BRICK_RETURN_IF_ERROR(DeleteManifest(db, m, &res));
    for (const BrickRecord& b : bricks) BRICK_RETURN_IF_ERROR(DeleteBrick(db, b, &res));
  }
  if (opts.dry_run) return res;  // the transaction rolls back
  JsonValue detail = JsonValue::MakeObject();
  detail.Set("bricks", StringArray(res.bricks));
  detail.Set("manifests", StringArray(res.manifests));
  detail.Set("tags", StringArray(res.tags));
  detail.Set("force", JsonValue::Bool(opts.force));
  BRICK_RETURN_IF_ERROR(LogEvent(db, "rm", ref, DumpJson(detail)));
  BRICK_RETURN_IF_ERROR(tx.Commit());
  return res;
}

Result<GcResult> Registry::CollectGarbage(bool vacuum) {
  const sqlite::Db& db = impl_->db;
  GcResult res;
  {
    BRICK_ASSIGN_OR_RETURN(sqlite::Transaction tx, sqlite::Transaction::Begin(db));
    BRICK_ASSIGN_OR_RETURN(res.db_bytes_before, DbBytes(db));
    constexpr const char* kOrphans =
        " FROM blobs WHERE digest NOT IN (SELECT digest FROM bricks UNION SELECT digest FROM tokenizer_files)";
    BRICK_ASSIGN_OR_RETURN(res.blobs, db.QueryInt((std::string("SELECT count(*)") + kOrphans).c_str()));
    BRICK_ASSIGN_OR_RETURN(res.bytes, db.QueryInt((std::string("SELECT coalesce(sum(size), 0)") + kOrphans).c_str()));
    BRICK_RETURN_IF_ERROR(db.Exec((std::string("DELETE") + kOrphans).c_str()));
    JsonValue detail = JsonValue::MakeObject();
    detail.Set("blobs", JsonValue::Int(res.blobs));
    detail.Set("bytes", JsonValue::Int(res.bytes));
    detail.Set("vacuum", JsonValue::Bool(vacuum));
    BRICK_RETURN_IF_ERROR(LogEvent(db, "gc", "blobs", DumpJson(detail)));
    BRICK_RETURN_IF_ERROR(tx.Commit());
  }
  if (vacuum) {
    // Outside any transaction (VACUUM refuses to run inside one). TRUNCATE resets the WAL file,
    // which VACUUM fills with a copy of every page.
    BRICK_RETURN_IF_ERROR(db.Exec("VACUUM"));
    BRICK_RETURN_IF_ERROR(db.Exec("PRAGMA wal_checkpoint(TRUNCATE)"));
  }
  BRICK_ASSIGN_OR_RETURN(res.db_bytes_after, DbBytes(db));
  BRICK_ASSIGN_OR_RETURN(res.free_bytes_after, FreeBytes(db));
  return res;
}

Result<VisibilityResult> Registry::SetVisibility(const std::string& ref, Visibility visibility) {
  const sqlite::Db& db = impl_->db;
  BRICK_ASSIGN_OR_RETURN(sqlite::Transaction tx, sqlite::Transaction::Begin(db));
  std::vector<BrickRecord> bricks;
  if (ref.find('/') != std::string::npos) {
    BRICK_ASSIGN_OR_RETURN(BrickRecord b, GetBrick(ref));
    bricks.push_back(std::move(b));
  } else {
    BRICK_ASSIGN_OR_RETURN(ManifestRecord m, ResolveModel(ref));
    BRICK_ASSIGN_OR_RETURN(bricks, ManifestBricks(m));
  }
  VisibilityResult res;
  BRICK_ASSIGN_OR_RETURN(sqlite::Stmt st, db.Prepare("UPDATE bricks SET visibility = ? WHERE id = ?"));
  std::set<int64_t> done;  // a tied lm_head may appear twice; count each brick once
  for (const BrickRecord& b : bricks) {
    if (!done.insert(b.id).second) continue;
    if (b.visibility == visibility) {
      ++res.unchanged;
      continue;
    }
    st.Reset();
    st.Bind(1, VisibilityName(visibility)).Bind(2, b.id);
    BRICK_RETURN_IF_ERROR(st.Run());
    res.changed.push_back(b.Ref());
  }
  JsonValue detail = JsonValue::MakeObject();
  detail.Set("visibility", JsonValue::String(VisibilityName(visibility)));
  detail.Set("bricks", StringArray(res.changed));
  BRICK_RETURN_IF_ERROR(LogEvent(db, "visibility", ref, DumpJson(detail)));
  BRICK_RETURN_IF_ERROR(tx.Commit());
  return res;
}

Status Registry::ExportModel(const ManifestRecord& manifest, const std::string& dir, const ExportOptions& opts) const {
  if (manifest.kind != ManifestKind::kModel) {
    return InvalidArgument(manifest.Ref() + " is a plugin; an HF checkpoint holds a model (export the submodel it is "
                           "merged into)");
  }
  BRICK_ASSIGN_OR_RETURN(std::vector<BrickRecord> records, ManifestBricks(manifest));
  for (const BrickRecord& b : records) {
    if (b.kind == BrickKind::kLora) {
      return InvalidArgument("model " + manifest.Ref() + " applies lora " + b.Ref() +
                             " on the fly, which an HF checkpoint cannot hold; compose it with `merge: true`, save "
                             "and export that");
    }
  }
  if (!opts.allow_private) {
    std::vector<std::string> priv;
    for (const BrickRecord& b : records)
      if (b.visibility == Visibility::kPrivate) priv.push_back(b.Ref());
    if (!priv.empty()) {
      std::string more = priv.size() > 1 ? " and " + std::to_string(priv.size() - 1) + " more private bricks" : "";
      return InvalidArgument("model " + manifest.Ref() + " contains private brick " + priv.front() + more +
                             "; private bricks stay on this device unless exported with --allow-private");
    }
  }
  // An export never mixes with (or replaces) files already in dir: an existing checkpoint there would
  // otherwise be overwritten in part.
  std::error_code ec;
  if (fs::exists(dir, ec)) {
    if (!fs::is_directory(dir, ec)) return InvalidArgument("export target " + dir + " exists and is not a directory");
    if (!fs::is_empty(dir, ec))
      return InvalidArgument("export target " + dir + " is not empty; choose a new or empty directory");
  }
  BRICK_ASSIGN_OR_RETURN(std::vector<BrickData> loaded, LoadBricks(records));
  BRICK_ASSIGN_OR_RETURN(TokenizerFiles tokenizer, LoadTokenizerFiles(manifest));
  // A submodel's removed experts are dropped for real: the checkpoint has fewer experts per layer.
  auto compact = CompactRemovedExperts(manifest.config, std::move(loaded));
  if (!compact.ok()) return compact.status().WithContext("exporting model " + manifest.Ref());
  auto& [cfg, bricks] = *compact;
  WriteOptions wo;
  wo.max_shard_bytes = opts.max_shard_bytes;
  wo.write_dead_buffers = false;
  Status st = WriteHfCheckpoint(dir, cfg, bricks, wo);
  // The tokenizer's files go next to config.json, as the checkpoint had them.
  if (st.ok()) st = WriteTokenizerFiles(dir, tokenizer);
  if (!st.ok()) return st.WithContext("exporting model " + manifest.Ref());
  return Status::Ok();
}

}  // namespace brickrt
