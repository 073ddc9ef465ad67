// Internal to registry/*.cpp: the Registry's private state and the helpers its source files share
// (schema set-up, row decoding, config JSON, clocks, events). Not part of the public API.
#pragma once

#include <cstdint>
#include <map>
#include <vector>
#include <optional>
#include <string>
#include <string_view>

#include "core/model_config.h"
#include "core/status.h"
#include "registry/registry.h"
#include "registry/sqlite_db.h"

namespace brickrt {

struct Registry::Impl {
  sqlite::Db db;
  std::string path;
  int schema_version = 0;
  OpenOptions opts;
};

namespace registry_internal {

// The newest schema this code knows; schema.cpp holds the numbered migrations up to it.
inline constexpr int kSchemaVersion = 5;

// schema.cpp. Sets the connection's pragmas and brings the schema to kSchemaVersion: creates it in an
// empty database (page size first, then WAL, then the tables), migrates an older one, and refuses a
// non-registry, a newer schema, or a needed migration on a read-only connection. *version receives
// the schema version found after migration.
Status PrepareSchema(const sqlite::Db& db, const OpenOptions& opts, int* version);

// registry_load.cpp. Hashes the stored blob with this digest: nullopt when there is none, true when
// its bytes match the digest and `bytes` (and its stored CRC-32C, when it has one), false when it is
// damaged.
Result<std::optional<bool>> CheckStoredBlob(const sqlite::Db& db, const std::string& digest, int64_t bytes);
// registry_load.cpp. CRC-32C of the whole payload of blobs row blob_id.
Result<uint32_t> BlobCrc32c(const sqlite::Db& db, int64_t blob_id);

// registry_rows.cpp
// "2024-05-01T12:34:56.789Z"
std::string NowUtc();
// Every ModelConfig field, per-layer expert counts included (HF config.json keeps only the maximum).
// Deterministic, so equal configs give equal strings.
std::string ConfigToJson(const ModelConfig& cfg);
Result<ModelConfig> ConfigFromJson(std::string_view json, const std::string& what);
std::string ShapeToJson(const Shape& shape);  // "[16,1024]"
// The columns ReadBrick expects, in order; append " WHERE ..." to select rows.
inline constexpr const char* kBrickColumns =
    "SELECT id, name, version, kind, layer, idx, digest, bytes, visibility, parent_id, created_at, metadata "
    "FROM bricks";
// Decodes the current row of a statement built on kBrickColumns and reads its tensor records.
Result<BrickRecord> ReadBrickRow(const sqlite::Db& db, const sqlite::Stmt& st);
// Steps `st` (a kBrickColumns query with its parameters bound) to the end, reading every row.
Result<std::vector<BrickRecord>> ReadBrickRows(const sqlite::Db& db, sqlite::Stmt& st);
Result<BrickRecord> ReadBrickById(const sqlite::Db& db, int64_t id);
// The highest version of a full brick name, or nullopt.
Result<std::optional<BrickRecord>> LatestBrick(const sqlite::Db& db, const std::string& name);
Result<ManifestRecord> ReadManifestById(const sqlite::Db& db, int64_t id);
// registry_write.cpp: the steps every writer (Import, ImportPlugin, SaveManifest) shares.

// A brick about to be written, with what is computed before taking the write lock.
struct PreparedBrick {
  const BrickData* data;
  std::string name;  // full name
  std::string digest;
  uint32_t crc32c = 0;  // of the payload, stored beside the blob and checked on every load
  int64_t bytes = 0;
};
// Names each brick model_name + "/" + Name() and hashes it (SHA-256 + CRC-32C). Errors:
// InvalidArgument (a name twice, a brick without tensors), OutOfRange (beyond SQLite's blob limit).
Result<std::vector<PreparedBrick>> PrepareBricks(const std::string& model_name,
                                                 const std::vector<const BrickData*>& bricks, int64_t max_blob_bytes);
// Same kind, position, tensor names, dtypes and shapes in the same order: equal digests alone would let
// a reshaped tensor with the same bytes pass as the old brick.
bool SameLayout(const BrickRecord& rec, const BrickData& b);
// Makes the blob row for p.digest hold p's payload: inserts it when absent, rewrites it in place when
// `repair` (its stored bytes failed the digest), else leaves it. *written receives the bytes written.
Status EnsureBlob(const sqlite::Db& db, const PreparedBrick& p, bool repair, int64_t* written);
// The same for any payload given as consecutive byte ranges (EnsureBlob's tensors, a tokenizer file).
struct BlobPayload {
  std::string digest;
  uint32_t crc32c = 0;
  int64_t bytes = 0;
  std::vector<std::pair<const uint8_t*, int64_t>> parts;  // concatenated in order = the payload
};
Status EnsureBlobPayload(const sqlite::Db& db, const BlobPayload& p, bool repair, int64_t* written);
struct NewBrickRow {
  int64_t version = 1;
  std::optional<int64_t> parent_id;  // lineage: the previous version, or the brick it was derived from
  Visibility visibility = Visibility::kShared;
  std::string now;
  std::string metadata_json = "{}";
};
Result<int64_t> InsertBrick(const sqlite::Db& db, const PreparedBrick& p, const NewBrickRow& row);
// What makes two manifest versions equal (a re-import or re-save that changes nothing adds none).
struct ManifestContent {
  ManifestKind kind = ManifestKind::kModel;
  std::string base;
  std::string config_json;  // ConfigToJson
  std::vector<int64_t> brick_ids;
  std::map<int64_t, double> plugin_scales;
  std::vector<TokenizerFileRecord> tokenizer;  // blobs already stored (StoreTokenizerFiles)
};
// Makes `content` the latest version of manifest `name`: reuses the latest version when it already
// has this content (a re-import or re-save that changes nothing adds none), else inserts a new one.
// Sets res->manifest and res->new_manifest.
Status StoreManifest(const sqlite::Db& db, const std::string& name, const ManifestContent& content,
                     const std::string& source, const std::string& now, ImportResult* res);

// registry_tokenizer.cpp. Stores each tokenizer file as a blob (SHA-256 digest, CRC-32C; an existing
// blob with that digest is re-hashed and rewritten when damaged) and returns the records a manifest
// references. Inside the caller's transaction.
Result<std::vector<TokenizerFileRecord>> StoreTokenizerFiles(const sqlite::Db& db, const TokenizerFiles& files,
                                                             int64_t* written);
// The tokenizer rows of manifest id, by name.
Result<std::vector<TokenizerFileRecord>> ReadTokenizerRows(const sqlite::Db& db, int64_t manifest_id);

// Appends one row to the event log (inside the caller's transaction when there is one).
Status LogEvent(const sqlite::Db& db, std::string_view kind, std::string_view subject, std::string_view detail);
// Model names and tags end up inside refs (NAME@V, NAME:TAG, NAME/brick), so those separators and
// whitespace are refused. `what` is "model name" or "tag".
Status CheckName(std::string_view name, const char* what);

}  // namespace registry_internal
}  // namespace brickrt
