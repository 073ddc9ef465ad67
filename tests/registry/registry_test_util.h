// Helpers for the registry tests: small random models, byte-for-byte brick comparison, and a raw
// SQLite connection for inspecting or damaging a registry file behind the Registry's back.
#pragma once

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <cstring>
#include <string>
#include <vector>

#include "registry/registry.h"
#include "registry/test_model.h"
#include "brick_compare.h"
#include "small_model.h"
#include "test_files.h"

namespace brickrt::testing {

inline std::unique_ptr<Registry> OpenOrDie(const std::string& path, const OpenOptions& opts = {}) {
  auto r = Registry::Open(path, opts);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? std::move(r).value() : nullptr;
}

inline int64_t PayloadBytes(const std::vector<BrickData>& bricks) {
  int64_t n = 0;
  for (const BrickData& b : bricks) n += static_cast<int64_t>(b.nbytes());
  return n;
}



// A raw connection to a registry file, for what a test must do that the Registry API forbids.
class RawDb {
 public:
  explicit RawDb(const std::string& path) {
    EXPECT_EQ(sqlite3_open(path.c_str(), &db_), SQLITE_OK) << path;
    sqlite3_busy_timeout(db_, 5000);
  }
  ~RawDb() { sqlite3_close(db_); }
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;

  void Exec(const std::string& sql) {
    char* err = nullptr;
    EXPECT_EQ(sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK) << sql << ": " << (err ? err : "");
    sqlite3_free(err);
  }
  int64_t Int(const std::string& sql) {
    sqlite3_stmt* st = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db_, sql.c_str(), -1, &st, nullptr), SQLITE_OK) << sql;
    int64_t v = -1;
    if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
  }
  std::string Text(const std::string& sql) {
    sqlite3_stmt* st = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db_, sql.c_str(), -1, &st, nullptr), SQLITE_OK) << sql;
    std::string v;
    if (sqlite3_step(st) == SQLITE_ROW) v = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return v;
  }
  // Flips one byte of the payload blob with this digest, in place (the row keeps its digest).
  void FlipBlobByte(const std::string& digest, int offset) {
    const int64_t rowid = Int("SELECT id FROM blobs WHERE digest = '" + digest + "'");
    sqlite3_blob* b = nullptr;
    ASSERT_EQ(sqlite3_blob_open(db_, "main", "blobs", "data", rowid, 1, &b), SQLITE_OK);
    unsigned char c = 0;
    ASSERT_EQ(sqlite3_blob_read(b, &c, 1, offset), SQLITE_OK);
    c ^= 0x5a;
    ASSERT_EQ(sqlite3_blob_write(b, &c, 1, offset), SQLITE_OK);
    sqlite3_blob_close(b);
  }

 private:
  sqlite3* db_ = nullptr;
};

// A registry file an older brickrt left (the test rewound it to that schema with RawDb): a read-only
// open refuses to migrate it (Unsupported), a writable open brings it to the current schema. Returns
// the migrated registry (null after a failed expectation).
inline std::unique_ptr<Registry> ExpectMigratesToCurrent(const std::string& path, int current) {
  OpenOptions ro;
  ro.read_only = true;
  auto refused = Registry::Open(path, ro);
  EXPECT_FALSE(refused.ok()) << "a read-only open must not migrate";
  if (!refused.ok()) {
    EXPECT_EQ(refused.status().code(), StatusCode::kUnsupported) << refused.status().ToString();
  }
  auto reg = OpenOrDie(path);
  if (reg == nullptr) return nullptr;
  EXPECT_EQ(reg->schema_version(), current);
  EXPECT_EQ(RawDb(path).Int("PRAGMA user_version"), current);
  return reg;
}

}  // namespace brickrt::testing
