// The registry schema as a numbered list of migrations, and the connection set-up that applies them.
// Migrations only append: a released step is never edited, a change is a new step (schema v2, ...).
#include <string>

#include "registry/registry_internal.h"

namespace brickrt::registry_internal {
namespace {

// PRAGMA application_id marks the file as ours ("Brck"), so a foreign SQLite file is told apart from
// an empty one even before reading any table.
constexpr int64_t kApplicationId = 0x4272636b;

struct Migration {
  int to_version;
  const char* sql;  // fixed SQL, run with sqlite3_exec
  // Optional: fills what SQL alone cannot (checksums of stored payloads); runs after sql, in the same
  // transaction.
  Status (*backfill)(const sqlite::Db& db) = nullptr;
};

// v2: CRC-32C of every payload stored before the checksum table existed, read with incremental blob
// I/O (a plain SELECT of a large blob is ~0.3 GB/s, DESIGN.md §4).
Status BackfillBlobChecksums(const sqlite::Db& db) {
  BRICK_ASSIGN_OR_RETURN(sqlite::Stmt ids, db.Prepare("SELECT id FROM blobs ORDER BY id"));
  BRICK_ASSIGN_OR_RETURN(sqlite::Stmt ins, db.Prepare("INSERT INTO blob_checksums (blob_id, crc32c) VALUES (?, ?)"));
  for (;;) {
    BRICK_ASSIGN_OR_RETURN(bool row, ids.Step());
    if (!row) return Status::Ok();
    const int64_t id = ids.Int64(0);
    BRICK_ASSIGN_OR_RETURN(uint32_t crc, BlobCrc32c(db, id));
    ins.Reset();
    ins.Bind(1, id).Bind(2, int64_t{crc});
    BRICK_RETURN_IF_ERROR(ins.Run());
  }
}

// Column notes: digests are lowercase SHA-256 hex; shapes are JSON arrays; times ISO-8601 UTC;
// bricks.kind and visibility use the names of BrickKindName / VisibilityName. Blob columns come after
// the small ones so reading a row's metadata never touches the payload's overflow pages.
constexpr Migration kMigrations[] = {
    {1, R"sql(
CREATE TABLE schema_info (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO schema_info (key, value) VALUES ('application', 'brickrt');
CREATE TABLE blobs (
  id INTEGER PRIMARY KEY,
  digest TEXT NOT NULL UNIQUE,
  size INTEGER NOT NULL,
  data BLOB NOT NULL
);
CREATE TABLE bricks (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  version INTEGER NOT NULL,
  kind TEXT NOT NULL,
  layer INTEGER NOT NULL,
  idx INTEGER NOT NULL,
  digest TEXT NOT NULL REFERENCES blobs (digest),
  bytes INTEGER NOT NULL,
  visibility TEXT NOT NULL CHECK (visibility IN ('shared', 'private')),
  parent_id INTEGER REFERENCES bricks (id),
  created_at TEXT NOT NULL,
  metadata TEXT NOT NULL DEFAULT '{}',
  UNIQUE (name, version)
);
CREATE INDEX bricks_digest ON bricks (digest);
CREATE TABLE brick_tensors (
  brick_id INTEGER NOT NULL REFERENCES bricks (id) ON DELETE CASCADE,
  ord INTEGER NOT NULL,
  name TEXT NOT NULL,
  dtype TEXT NOT NULL,
  shape TEXT NOT NULL,
  offset INTEGER NOT NULL,
  bytes INTEGER NOT NULL,
  PRIMARY KEY (brick_id, ord)
) WITHOUT ROWID;
CREATE TABLE manifests (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  version INTEGER NOT NULL,
  config TEXT NOT NULL,
  created_at TEXT NOT NULL,
  source TEXT NOT NULL DEFAULT '',
  UNIQUE (name, version)
);
CREATE TABLE manifest_bricks (
  manifest_id INTEGER NOT NULL REFERENCES manifests (id) ON DELETE CASCADE,
  ord INTEGER NOT NULL,
  brick_id INTEGER NOT NULL REFERENCES bricks (id),
  PRIMARY KEY (manifest_id, ord)
) WITHOUT ROWID;
CREATE INDEX manifest_bricks_brick ON manifest_bricks (brick_id);
CREATE TABLE tags (
  name TEXT NOT NULL,
  tag TEXT NOT NULL,
  manifest_id INTEGER NOT NULL REFERENCES manifests (id),
  UNIQUE (name, tag)
);
CREATE TABLE events (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  at TEXT NOT NULL,
  kind TEXT NOT NULL,
  subject TEXT NOT NULL,
  detail TEXT NOT NULL DEFAULT '{}'
);
)sql"},
    // CRC-32C of each payload, checked on every load (SHA-256 stays the content address, checked at
    // import and by `brick verify`). A table of its own rather than a column of blobs: a column added
    // after `data` would sit behind the payload's overflow pages, so reading it would walk the chain.
    {2, R"sql(
CREATE TABLE blob_checksums (
  blob_id INTEGER PRIMARY KEY REFERENCES blobs (id) ON DELETE CASCADE,
  crc32c INTEGER NOT NULL
);
)sql",
     BackfillBlobChecksums},
    // Submodels and plugins (issue #4): a manifest is a runnable model or a plugin (a set of lora bricks
    // made for `base`); a submodel names the manifest it was composed from in `base`; a lora brick in a
    // submodel's list carries the scale it is applied with (NULL for every other brick).
    {3, R"sql(
ALTER TABLE manifests ADD COLUMN kind TEXT NOT NULL DEFAULT 'model' CHECK (kind IN ('model', 'plugin'));
ALTER TABLE manifests ADD COLUMN base TEXT NOT NULL DEFAULT '';
ALTER TABLE manifest_bricks ADD COLUMN scale REAL;
)sql"},
    // Expert profiles (issue #7, registry/profiles.h): per layer and expert, how many tokens chose it
    // and the gate mass it got over some token data, measured on one manifest (removed with it).
    // `layers` is a JSON array of {layer, kind, counts, gate_mass}.
    {4, R"sql(
CREATE TABLE profiles (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  manifest_id INTEGER NOT NULL REFERENCES manifests (id) ON DELETE CASCADE,
  data_path TEXT NOT NULL,
  data_digest TEXT NOT NULL,
  tokens INTEGER NOT NULL,
  created_at TEXT NOT NULL,
  layers TEXT NOT NULL
);
CREATE INDEX profiles_manifest ON profiles (manifest_id);
)sql"},
    // A tokenizer is part of the manifest (issue #7, registry/tokenizer_files.h): each of its files
    // (tokenizer.json, or vocab.json + merges.txt + ...) is a blob like a brick payload (same digest
    // key, same checksum row), referenced per manifest by file name. gc keeps the blobs named here.
    {5, R"sql(
CREATE TABLE tokenizer_files (
  manifest_id INTEGER NOT NULL REFERENCES manifests (id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  digest TEXT NOT NULL REFERENCES blobs (digest),
  bytes INTEGER NOT NULL,
  PRIMARY KEY (manifest_id, name)
) WITHOUT ROWID;
CREATE INDEX tokenizer_files_digest ON tokenizer_files (digest);
)sql"},
};

static_assert(sizeof(kMigrations) / sizeof(kMigrations[0]) == kSchemaVersion,
              "one migration per schema version, numbered 1..kSchemaVersion");

Status Migrate(const sqlite::Db& db, const std::string& path) {
  BRICK_ASSIGN_OR_RETURN(sqlite::Transaction tx, sqlite::Transaction::Begin(db));
  // Read again under the write lock: another process may have migrated since we looked.
  BRICK_ASSIGN_OR_RETURN(int64_t current, db.QueryInt("PRAGMA user_version"));
  for (const Migration& m : kMigrations) {
    if (m.to_version <= current) continue;
    Status st = db.Exec(m.sql);
    if (st.ok() && m.backfill != nullptr) st = m.backfill(db);
    if (!st.ok())
      return st.WithContext("migrating registry " + path + " to schema version " + std::to_string(m.to_version));
  }
  // PRAGMA takes no bound parameters; both values are constants of this file.
  BRICK_RETURN_IF_ERROR(db.Exec(("PRAGMA user_version = " + std::to_string(kSchemaVersion)).c_str()));
  BRICK_RETURN_IF_ERROR(db.Exec(("PRAGMA application_id = " + std::to_string(kApplicationId)).c_str()));
  return tx.Commit();
}

}  // namespace

Status PrepareSchema(const sqlite::Db& db, const OpenOptions& opts, int* version) {
  const std::string& path = db.path();
  db.SetBusyTimeout(opts.busy_timeout_ms);
  // The first read: SQLite opens lazily, so this is where a non-database file shows up (NOTADB).
  BRICK_ASSIGN_OR_RETURN(int64_t n_objects, db.QueryInt("SELECT count(*) FROM sqlite_master"));
  BRICK_ASSIGN_OR_RETURN(int64_t user_version, db.QueryInt("PRAGMA user_version"));
  BRICK_ASSIGN_OR_RETURN(int64_t app_id, db.QueryInt("PRAGMA application_id"));

  const bool fresh = n_objects == 0 && user_version == 0 && app_id == 0;
  if (fresh) {
    if (opts.read_only) return InvalidArgument(path + " is not a brickrt registry (an empty database)");
    // 64 KiB pages make incremental blob reads ~10x faster than the 4 KiB default (DESIGN.md §4); the
    // page size is fixed once the first table exists, and cannot change after WAL is on.
    BRICK_RETURN_IF_ERROR(db.Exec("PRAGMA page_size = 65536"));
    // WAL: readers (a running `brick run`) are not blocked by an import. An in-memory database
    // answers "memory", which is fine.
    BRICK_RETURN_IF_ERROR(db.Exec("PRAGMA journal_mode = WAL"));
  } else if (app_id != kApplicationId) {
    return InvalidArgument(path + " is a SQLite database but not a brickrt registry");
  }
  if (user_version > kSchemaVersion) {
    return Unsupported("registry " + path + " has schema version " + std::to_string(user_version) +
                       ", this brick understands up to " + std::to_string(kSchemaVersion) + "; upgrade brick");
  }
  if (user_version < kSchemaVersion) {
    if (opts.read_only) {
      return Unsupported("registry " + path + " has schema version " + std::to_string(user_version) +
                         " and needs migrating to " + std::to_string(kSchemaVersion) +
                         "; open it once without read-only");
    }
    BRICK_RETURN_IF_ERROR(Migrate(db, path));
  }
  BRICK_RETURN_IF_ERROR(db.Exec("PRAGMA foreign_keys = ON"));
  // Map as much of the file as SQLite allows (the build caps it, 2 GiB on Debian): blob reads then
  // copy from the page cache without a read() per page. SQLite clamps the value to its limit.
  BRICK_RETURN_IF_ERROR(db.Exec("PRAGMA mmap_size = 1099511627776"));
  BRICK_ASSIGN_OR_RETURN(int64_t v, db.QueryInt("PRAGMA user_version"));
  *version = static_cast<int>(v);
  return Status::Ok();
}

}  // namespace brickrt::registry_internal
