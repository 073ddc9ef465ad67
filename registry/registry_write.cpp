// Writing bricks and manifests, shared by Import (a checkpoint), ImportPlugin (an adapter) and
// SaveManifest (a composed submodel). Callers hold the transaction.
#include <set>

#include "core/crc32c.h"
#include "core/sha256.h"
#include "registry/registry_internal.h"

namespace brickrt::registry_internal {

// Hashing is the slow part of an import (the whole model passes through SHA-256, and CRC-32C for the
// load-time check); doing it before BEGIN keeps the registry's write lock short.
Result<std::vector<PreparedBrick>> PrepareBricks(const std::string& model_name,
                                                 const std::vector<const BrickData*>& bricks, int64_t max_blob_bytes) {
  std::vector<PreparedBrick> out;
  std::set<std::string> seen;
  for (const BrickData* bp : bricks) {
    const BrickData& b = *bp;
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
  BlobPayload payload{p.digest, p.crc32c, p.bytes, {}};
  for (const auto& [tname, t] : p.data->tensors)
    payload.parts.emplace_back(static_cast<const uint8_t*>(t.data()), static_cast<int64_t>(t.nbytes()));
  return EnsureBlobPayload(db, payload, repair, written);
}

Status EnsureBlobPayload(const sqlite::Db& db, const BlobPayload& p, bool repair, int64_t* written) {
  *written = 0;
  BRICK_ASSIGN_OR_RETURN(sqlite::Stmt find, db.Prepare("SELECT id FROM blobs WHERE digest = ?"));
  find.Bind(1, p.digest);
  BRICK_ASSIGN_OR_RETURN(bool exists, find.Step());
  if (exists && !repair) return Status::Ok();
  // zeroblob reserves the row's pages; the payload is then streamed in part by part with
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
  for (const auto& [src, n] : p.parts) {
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

Result<int64_t> InsertBrick(const sqlite::Db& db, const PreparedBrick& p, const NewBrickRow& row) {
  const BrickData& b = *p.data;
  BRICK_ASSIGN_OR_RETURN(sqlite::Stmt st,
                         db.Prepare("INSERT INTO bricks (name, version, kind, layer, idx, digest, bytes, visibility, "
                                    "parent_id, created_at, metadata) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
  st.Bind(1, p.name).Bind(2, row.version).Bind(3, BrickKindName(b.kind));
  st.Bind(4, int64_t{b.layer}).Bind(5, int64_t{b.index}).Bind(6, p.digest).Bind(7, p.bytes);
  st.Bind(8, VisibilityName(row.visibility));
  if (row.parent_id) {
    st.Bind(9, *row.parent_id);
  } else {
    st.BindNull(9);
  }
  st.Bind(10, row.now).Bind(11, row.metadata_json);
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

namespace {

// The latest manifest of `name` when it already has this content, else nullopt.
Result<std::optional<int64_t>> SameLatestManifest(const sqlite::Db& db, const std::string& name,
                                                  const ManifestContent& content) {
  BRICK_ASSIGN_OR_RETURN(sqlite::Stmt st,
                         db.Prepare("SELECT id FROM manifests WHERE name = ? ORDER BY version DESC LIMIT 1"));
  st.Bind(1, name);
  BRICK_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return std::optional<int64_t>();
  BRICK_ASSIGN_OR_RETURN(ManifestRecord m, ReadManifestById(db, st.Int64(0)));
  // Compare configs through one serializer, so a stored config written by older code with a different
  // key order or spelling still compares equal when its values are.
  if (ConfigToJson(m.config) != content.config_json || m.brick_ids != content.brick_ids || m.kind != content.kind ||
      m.base != content.base || m.plugin_scales != content.plugin_scales || m.tokenizer != content.tokenizer) {
    return std::optional<int64_t>();
  }
  return std::optional<int64_t>(m.id);
}

Result<int64_t> InsertManifest(const sqlite::Db& db, const std::string& name, const ManifestContent& content,
                               const std::string& source, const std::string& now) {
  BRICK_ASSIGN_OR_RETURN(
      sqlite::Stmt st,
      db.Prepare("INSERT INTO manifests (name, version, config, created_at, source, kind, base) VALUES "
                 "(?1, (SELECT COALESCE(MAX(version), 0) + 1 FROM manifests WHERE name = ?1), ?2, ?3, ?4, ?5, ?6)"));
  st.Bind(1, name).Bind(2, content.config_json).Bind(3, now).Bind(4, source);
  st.Bind(5, ManifestKindName(content.kind)).Bind(6, content.base);
  BRICK_RETURN_IF_ERROR(st.Run());
  const int64_t id = db.LastInsertRowid();
  BRICK_ASSIGN_OR_RETURN(
      sqlite::Stmt mb,
      db.Prepare("INSERT INTO manifest_bricks (manifest_id, ord, brick_id, scale) VALUES (?, ?, ?, ?)"));
  for (size_t i = 0; i < content.brick_ids.size(); ++i) {
    const int64_t brick_id = content.brick_ids[i];
    mb.Reset();
    mb.Bind(1, id).Bind(2, static_cast<int64_t>(i)).Bind(3, brick_id);
    const auto scale = content.plugin_scales.find(brick_id);
    if (scale != content.plugin_scales.end()) {
      mb.BindDouble(4, scale->second);
    } else {
      mb.BindNull(4);
    }
    BRICK_RETURN_IF_ERROR(mb.Run());
  }
  BRICK_ASSIGN_OR_RETURN(sqlite::Stmt tf,
                         db.Prepare("INSERT INTO tokenizer_files (manifest_id, name, digest, bytes) VALUES (?, ?, ?, ?)"));
  for (const TokenizerFileRecord& f : content.tokenizer) {
    tf.Reset();
    tf.Bind(1, id).Bind(2, f.name).Bind(3, f.digest).Bind(4, f.bytes);
    BRICK_RETURN_IF_ERROR(tf.Run());
  }
  return id;
}

}  // namespace

Status StoreManifest(const sqlite::Db& db, const std::string& name, const ManifestContent& content,
                     const std::string& source, const std::string& now, ImportResult* res) {
  BRICK_ASSIGN_OR_RETURN(std::optional<int64_t> same, SameLatestManifest(db, name, content));
  int64_t manifest_id = 0;
  if (same) {
    manifest_id = *same;
  } else {
    BRICK_ASSIGN_OR_RETURN(manifest_id, InsertManifest(db, name, content, source, now));
    res->new_manifest = true;
  }
  BRICK_ASSIGN_OR_RETURN(res->manifest, ReadManifestById(db, manifest_id));
  return Status::Ok();
}

}  // namespace brickrt::registry_internal
