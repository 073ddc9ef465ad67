// Internal to registry/*.cpp: the Registry's private state and the helpers its source files share
// (schema set-up, row decoding, config JSON, clocks, events). Not part of the public API.
#pragma once

#include <cstdint>
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
inline constexpr int kSchemaVersion = 2;

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
// Appends one row to the event log (inside the caller's transaction when there is one).
Status LogEvent(const sqlite::Db& db, std::string_view kind, std::string_view subject, std::string_view detail);
// Model names and tags end up inside refs (NAME@V, NAME:TAG, NAME/brick), so those separators and
// whitespace are refused. `what` is "model name" or "tag".
Status CheckName(std::string_view name, const char* what);

}  // namespace registry_internal
}  // namespace brickrt
