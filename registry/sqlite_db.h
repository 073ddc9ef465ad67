// Internal to registry/*.cpp: small move-only RAII owners of a SQLite connection, a prepared statement,
// an incremental-I/O blob handle and a write transaction, with errors turned into Status values.
// Not part of brickrt's public API (only the opaque sqlite3 handle names appear, no sqlite3.h).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"

struct sqlite3;
struct sqlite3_stmt;
struct sqlite3_blob;

namespace brickrt::sqlite {

class Stmt;

// Owns one sqlite3 connection; closes it on destruction.
class Db {
 public:
  Db() = default;
  Db(Db&& o) noexcept : db_(o.db_), path_(std::move(o.path_)) { o.db_ = nullptr; }
  Db& operator=(Db&& o) noexcept;
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;
  ~Db();

  // Opens (read_only) or opens-or-creates (create) the database at path. Errors name the path.
  // SQLite opens lazily: a file that is not a database is only detected by the first query.
  static Result<Db> Open(const std::string& path, bool create, bool read_only);

  // Runs fixed SQL (one or more statements, no parameters). REQUIRES: sql holds no user input;
  // anything derived from input goes through Prepare + Bind.
  Status Exec(const char* sql) const;
  Result<Stmt> Prepare(std::string_view sql) const;
  // Runs fixed SQL that returns one integer (PRAGMA user_version, SELECT count(*) ...).
  Result<int64_t> QueryInt(const char* sql) const;

  int64_t LastInsertRowid() const;
  // The largest string or blob this connection accepts (SQLITE_LIMIT_LENGTH, 1e9 bytes by default).
  int64_t MaxBlobBytes() const;
  void SetBusyTimeout(int ms) const;
  // Status for the connection's last error: `what` says what was being done ("prepare", "import").
  Status Error(int rc, std::string_view what) const;
  sqlite3* get() const { return db_; }
  const std::string& path() const { return path_; }

 private:
  sqlite3* db_ = nullptr;
  std::string path_;
};

// Owns one prepared statement; finalizes it on destruction. Binds are 1-based, columns 0-based.
// Text is bound with SQLITE_TRANSIENT (copied), so arguments need not outlive the call.
class Stmt {
 public:
  Stmt() = default;
  Stmt(const Db* db, sqlite3_stmt* s) : db_(db), s_(s) {}
  Stmt(Stmt&& o) noexcept : db_(o.db_), s_(o.s_) { o.s_ = nullptr; }
  Stmt& operator=(Stmt&& o) noexcept;
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  ~Stmt();

  Stmt& Bind(int i, int64_t v);
  Stmt& Bind(int i, std::string_view v);
  Stmt& Bind(int i, const char* v) { return Bind(i, std::string_view(v)); }
  Stmt& BindDouble(int i, double v);  // named apart: an int argument would make Bind overloads ambiguous
  Stmt& BindNull(int i);
  Stmt& BindZeroBlob(int i, int64_t bytes);

  // Advances: true when a row is ready, false when done; an error otherwise (including a failed bind).
  Result<bool> Step();
  // Steps to completion, for statements that return no rows (INSERT, UPDATE, DELETE).
  Status Run();
  // Clears bindings and rewinds, so the statement can be run again with new values.
  void Reset();

  int64_t Int64(int col) const;
  double Double(int col) const;
  std::string Text(int col) const;
  bool IsNull(int col) const;

 private:
  const Db* db_ = nullptr;
  sqlite3_stmt* s_ = nullptr;
  int bind_rc_ = 0;  // first failing bind, reported by the next Step()
};

// Owns one incremental blob handle (sqlite3_blob_open): reads and writes go straight between the
// database pages and the caller's buffer, with no whole-payload copy.
class Blob {
 public:
  Blob() = default;
  Blob(Blob&& o) noexcept : db_(o.db_), b_(o.b_) { o.b_ = nullptr; }
  Blob& operator=(Blob&& o) noexcept;
  Blob(const Blob&) = delete;
  Blob& operator=(const Blob&) = delete;
  ~Blob();

  // table/column are fixed identifiers from our own code.
  static Result<Blob> Open(const Db& db, const char* table, const char* column, int64_t rowid, bool writable);
  int64_t size() const;
  // Splits into chunks below SQLite's int-sized limit. REQUIRES: offset + n <= size().
  Status Read(void* dst, int64_t n, int64_t offset) const;
  Status Write(const void* src, int64_t n, int64_t offset);

 private:
  const Db* db_ = nullptr;
  sqlite3_blob* b_ = nullptr;
};

// BEGIN IMMEDIATE on construction (takes the write lock up front, waiting up to the busy timeout, so
// two writers never deadlock upgrading read locks); ROLLBACK on destruction unless Commit() ran.
class Transaction {
 public:
  static Result<Transaction> Begin(const Db& db);
  Transaction(Transaction&& o) noexcept : db_(o.db_) { o.db_ = nullptr; }
  Transaction& operator=(Transaction&&) = delete;
  Transaction(const Transaction&) = delete;
  ~Transaction();
  Status Commit();

 private:
  explicit Transaction(const Db* db) : db_(db) {}
  const Db* db_ = nullptr;  // null once committed or rolled back
};

}  // namespace brickrt::sqlite
