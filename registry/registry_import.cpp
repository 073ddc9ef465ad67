// Registry::Import: a model's bricks become content-addressed blobs and versioned brick rows, and the
// model a manifest version — all in one transaction, so a failed or killed import leaves no trace.
#include <set>

#include "core/crc32c.h"
#include "core/json.h"
#include "core/sha256.h"
#include "registry/registry_internal.h"

namespace brickrt {

using namespace registry_internal;

namespace {

// What Import needs of a brick before taking the write lock.
struct PreparedBrick {
  const BrickData* data;
  std::string name;  // full name
  std::string digest;
  uint32_t crc32c = 0;  // of the payload, stored beside the blob and checked on every load
  int64_t bytes = 0;
};

// Hashing is the slow part of an import (the whole model passes through SHA-256, and CRC-32C for the
// load-time check); doing it before BEGIN keeps the registry's write lock short.
Result<std::vector<PreparedBrick>> PrepareBricks(const std::string& model_name, const std::vector<BrickData>& bricks,
                                                 int64_t max_blob_bytes) {
  std::vector<PreparedBrick> out;
  std::set<std::string> seen;
  for (const BrickData& b : bricks) {
    PreparedBrick p{&b, model_name + "/" + b.Name(), "", 0, 0};
    if (!seen.insert(p.name).second) return InvalidArgument("brick " + p.name + " appears twice in the import");
    if (b.tensors.empty()) return InvalidArgument("brick " + p.name + " has no tensors");
    Sha256 h;
    for (const auto& [tname, t] : b.tensors) {
      if (t.empty()) return InvalidArgument("brick " + p.name + ": tensor '" + tname + "' has no storage");
      h.Update(t.data(), t.nbytes());
      p.crc32c = Crc32c(p.crc32c, t.data(), t.nbytes());
      p.bytes += static_cast<int64_t>(t.nbytes());
    }
    if (p.bytes > max_blob_bytes) {
      return OutOfRange("brick " + p.name + " is " + std::to_string(p.bytes) +
                        " bytes, above the registry's blob limit of " + std::to_string(max_blob_bytes) + " bytes");
    }
    const auto d = h.Finish();
    p.digest = ToHex(d.data(), d.size());
    out.push_back(std::move(p));
  }
  return out;
}

// Same tensor names, dtypes and shapes in the same order: equal digests alone would let a reshaped
// tensor with the same bytes pass as the old brick.
bool SameLayout(const BrickRecord& rec, const BrickData& b) {
  if (rec.kind != b.kind || rec.layer != b.layer || rec.index != b.index) return false;
  if (rec.tensors.size() != b.tensors.size()) return false;
  for (size_t i = 0; i < rec.tensors.size(); ++i) {
    const TensorRecord& r = rec.tensors[i];
    const auto& [name, t] = b.tensors[i];
    if (r.name != name || r.dtype != t.dtype() || r.shape != t.shape()) return false;
  }
  return true;
}

// Makes the blob row for p.digest hold p's payload: inserts it when absent, rewrites it in place when
// `repair` (its stored bytes failed the digest), else leaves it. *written receives the bytes written.
Status EnsureBlob(const sqlite::Db& db, const PreparedBrick& p, bool repair, int64_t* written) {
  *written = 0;
  BRICK_ASSIGN_OR_RETURN(sqlite::Stmt find, db.Prepare("SELECT id FROM blobs WHERE digest = ?"));
  find.Bind(1, p.digest);
  BRICK_ASSIGN_OR_RETURN(bool exists, find.Step());
  if (exists && !repair) return Status::Ok();
  // zeroblob reserves the row's pages; the payload is then streamed in tensor by tensor with
  // incremental blob I/O, so no concatenated copy of the payload is ever built in memory.
  int64_t id = exists ? find.Int64(0) : 0;
  if (exists) {
    BRICK_ASSIGN_OR_RETURN(sqlite::Stmt upd, db.Prepare("UPDATE blobs SET size = ?, data = ? WHERE id = ?"));
    upd.Bind(1, p.bytes).BindZeroBlob(2, p.bytes).Bind(3, id);
    BRICK_RETURN_IF_ERROR(upd.Run());
  } else {
    BRICK_ASSIGN_OR_RETURN(sqlite::Stmt ins, db.Prepare("INSERT INTO blobs (digest, size, data) VALUES (?, ?, ?)"));
    ins.Bind(1, p.digest).Bind(2, p.bytes).BindZeroBlob(3, p.bytes);
    BRICK_RETURN_IF_ERROR(ins.Run());
    id = db.LastInsertRowid();
  }
  BRICK_ASSIGN_OR_RETURN(sqlite::Blob blob, sqlite::Blob::Open(db, "blobs", "data", id, /*writable=*/true));
  constexpr int64_t kChunk = int64_t{8} << 20;  // bounds how much one write call holds up the page cache
  int64_t offset = 0;
  for (const auto& [tname, t] : p.data->tensors) {
    const auto* src = static_cast<const uint8_t*>(t.data());
    const int64_t n = static_cast<int64_t>(t.nbytes());
    for (int64_t done = 0; done < n; done += kChunk) {
      BRICK_RETURN_IF_ERROR(blob.Write(src + done, std::min(kChunk, n - done), offset + done));
    }
    offset += n;
  }
  BRICK_ASSIGN_OR_RETURN(sqlite::Stmt crc,
                         db.Prepare("INSERT OR REPLACE INTO blob_checksums (blob_id, crc32c) VALUES (?, ?)"));
  crc.Bind(1, id).Bind(2, int64_t{p.crc32c});
  BRICK_RETURN_IF_ERROR(crc.Run());
  *written = p.bytes;
  return Status::Ok();
}

Result<int64_t> InsertBrick(const sqlite::Db& db, const PreparedBrick& p, const std::optional<BrickRecord>& parent,
                            Visibility visibility, const std::string& now) {
  const BrickData& b = *p.data;
  BRICK_ASSIGN_OR_RETURN(sqlite::Stmt st,
                         db.Prepare("INSERT INTO bricks (name, version, kind, layer, idx, digest, bytes, visibility, "
                                    "parent_id, created_at, metadata) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '{}')"));
  st.Bind(1, p.name).Bind(2, parent ? parent->version + 1 : int64_t{1}).Bind(3, BrickKindName(b.kind));
  st.Bind(4, int64_t{b.layer}).Bind(5, int64_t{b.index}).Bind(6, p.digest).Bind(7, p.bytes);
  st.Bind(8, VisibilityName(visibility));
  if (parent) {
    st.Bind(9, parent->id);
  } else {
    st.BindNull(9);
  }
  st.Bind(10, now);
  BRICK_RETURN_IF_ERROR(st.Run());
  const int64_t id = db.LastInsertRowid();
  BRICK_ASSIGN_OR_RETURN(sqlite::Stmt tens,
                         db.Prepare("INSERT INTO brick_tensors (brick_id, ord, name, dtype, shape, offset, bytes) "
                                    "VALUES (?, ?, ?, ?, ?, ?, ?)"));
  int64_t offset = 0;
  for (size_t i = 0; i < b.tensors.size(); ++i) {
    const auto& [tname, t] = b.tensors[i];
    const auto n = static_cast<int64_t>(t.nbytes());
    tens.Reset();
    tens.Bind(1, id).Bind(2, static_cast<int64_t>(i)).Bind(3, tname).Bind(4, DTypeName(t.dtype()));
    tens.Bind(5, ShapeToJson(t.shape())).Bind(6, offset).Bind(7, n);
    BRICK_RETURN_IF_ERROR(tens.Run());
    offset += n;
  }
  return id;
}

// The latest manifest of `name` when it already has this config and brick list, else nullopt.
Result<std::optional<int64_t>> SameLatestManifest(const sqlite::Db& db, const std::string& name,
                                                  const std::string& config_json, const std::vector<int64_t>& ids) {
  BRICK_ASSIGN_OR_RETURN(sqlite::Stmt st,
                         db.Prepare("SELECT id FROM manifests WHERE name = ? ORDER BY version DESC LIMIT 1"));
  st.Bind(1, name);
  BRICK_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return std::optional<int64_t>();
  BRICK_ASSIGN_OR_RETURN(ManifestRecord m, ReadManifestById(db, st.Int64(0)));
  // Compare configs through one serializer, so a stored config written by older code with a different
  // key order or spelling still compares equal when its values are.
  if (ConfigToJson(m.config) != config_json || m.brick_ids != ids) return std::optional<int64_t>();
  return std::optional<int64_t>(m.id);
}

Result<int64_t> InsertManifest(const sqlite::Db& db, const std::string& name, const std::string& config_json,
                               const std::vector<int64_t>& ids, const std::string& source, const std::string& now) {
  BRICK_ASSIGN_OR_RETURN(
      sqlite::Stmt st,
      db.Prepare("INSERT INTO manifests (name, version, config, created_at, source) VALUES "
                 "(?1, (SELECT COALESCE(MAX(version), 0) + 1 FROM manifests WHERE name = ?1), ?2, ?3, ?4)"));
  st.Bind(1, name).Bind(2, config_json).Bind(3, now).Bind(4, source);
  BRICK_RETURN_IF_ERROR(st.Run());
  const int64_t id = db.LastInsertRowid();
  BRICK_ASSIGN_OR_RETURN(sqlite::Stmt mb,
                         db.Prepare("INSERT INTO manifest_bricks (manifest_id, ord, brick_id) VALUES (?, ?, ?)"));
  for (size_t i = 0; i < ids.size(); ++i) {
    mb.Reset();
    mb.Bind(1, id).Bind(2, static_cast<int64_t>(i)).Bind(3, ids[i]);
    BRICK_RETURN_IF_ERROR(mb.Run());
  }
  return id;
}

}  // namespace

Result<ImportResult> Registry::Import(const std::string& model_name, const ModelConfig& cfg,
                                      const std::vector<BrickData>& bricks, Visibility visibility,
                                      const std::string& source) {
  BRICK_RETURN_IF_ERROR(CheckName(model_name, "model name"));
  if (bricks.empty()) return InvalidArgument("model " + model_name + ": nothing to import (no bricks)");
  const sqlite::Db& db = impl_->db;
  BRICK_ASSIGN_OR_RETURN(std::vector<PreparedBrick> prepared, PrepareBricks(model_name, bricks, db.MaxBlobBytes()));

  // Stored payloads this import would reuse are checked before taking the write lock (reads only);
  // a damaged one is rewritten below from the imported bytes, which carry the same digest.
  std::set<std::string> damaged;
  for (const PreparedBrick& p : prepared) {
    if (damaged.count(p.digest) != 0) continue;
    BRICK_ASSIGN_OR_RETURN(std::optional<bool> intact, CheckStoredBlob(db, p.digest, p.bytes));
    if (intact && !*intact) damaged.insert(p.digest);
  }

  ImportResult res;
  BRICK_ASSIGN_OR_RETURN(sqlite::Transaction tx, sqlite::Transaction::Begin(db));
  const std::string now = NowUtc();
  std::vector<int64_t> ids;
  for (const PreparedBrick& p : prepared) {
    int64_t written = 0;
    const bool repair = damaged.erase(p.digest) != 0;  // once per digest
    if (repair) {
      BRICK_RETURN_IF_ERROR(EnsureBlob(db, p, /*repair=*/true, &written));
      res.new_blob_bytes += written;
      ++res.repaired_blobs;
    }
    BRICK_ASSIGN_OR_RETURN(std::optional<BrickRecord> latest, LatestBrick(db, p.name));
    // Visibility is part of the identity: re-importing as private must not leave a shared latest version.
    if (latest && latest->digest == p.digest && latest->visibility == visibility && SameLayout(*latest, *p.data)) {
      ids.push_back(latest->id);
      ++res.reused_bricks;
      continue;
    }
    BRICK_RETURN_IF_ERROR(EnsureBlob(db, p, /*repair=*/false, &written));
    res.new_blob_bytes += written;
    BRICK_ASSIGN_OR_RETURN(int64_t brick_id, InsertBrick(db, p, latest, visibility, now));
    ids.push_back(brick_id);
    ++res.new_bricks;
  }

  const std::string config_json = ConfigToJson(cfg);
  BRICK_ASSIGN_OR_RETURN(std::optional<int64_t> same, SameLatestManifest(db, model_name, config_json, ids));
  int64_t manifest_id = 0;
  if (same) {
    manifest_id = *same;
  } else {
    BRICK_ASSIGN_OR_RETURN(manifest_id, InsertManifest(db, model_name, config_json, ids, source, now));
    res.new_manifest = true;
  }
  BRICK_ASSIGN_OR_RETURN(res.manifest, ReadManifestById(db, manifest_id));

  JsonValue detail = JsonValue::MakeObject();
  detail.Set("source", JsonValue::String(source));
  detail.Set("visibility", JsonValue::String(VisibilityName(visibility)));
  detail.Set("new_manifest", JsonValue::Bool(res.new_manifest));
  detail.Set("new_bricks", JsonValue::Int(res.new_bricks));
  detail.Set("reused_bricks", JsonValue::Int(res.reused_bricks));
  detail.Set("new_blob_bytes", JsonValue::Int(res.new_blob_bytes));
  detail.Set("repaired_blobs", JsonValue::Int(res.repaired_blobs));
  BRICK_RETURN_IF_ERROR(LogEvent(db, "import", res.manifest.Ref(), DumpJson(detail)));
  BRICK_RETURN_IF_ERROR(tx.Commit());
  return res;
}

}  // namespace brickrt
