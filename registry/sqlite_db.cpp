// The RAII SQLite wrapper: SQLite result codes become Status values whose message names the registry
// file, so every caller reports "registry PATH: ..." without repeating the mapping.
#include "registry/sqlite_db.h"

#include <sqlite3.h>

#include <algorithm>
#include <limits>

namespace brickrt::sqlite {

Db& Db::operator=(Db&& o) noexcept {
  if (this != &o) {
    if (db_ != nullptr) sqlite3_close_v2(db_);
    db_ = o.db_;
    path_ = std::move(o.path_);
    o.db_ = nullptr;
  }
  return *this;
}

Db::~Db() {
  // close_v2 defers the close until outstanding statements/blobs are finalized, so destruction order
  // between a Db and its Stmts cannot leak or crash.
  if (db_ != nullptr) sqlite3_close_v2(db_);
}

Result<Db> Db::Open(const std::string& path, bool create, bool read_only) {
  int flags = read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE;
  if (create && !read_only) flags |= SQLITE_OPEN_CREATE;
  // FULLMUTEX: a Registry may be shared by a loader thread and a server thread; SQLite serializes.
  flags |= SQLITE_OPEN_FULLMUTEX;
  Db db;
  db.path_ = path;
  const int rc = sqlite3_open_v2(path.c_str(), &db.db_, flags, nullptr);
  if (rc != SQLITE_OK) {
    if (db.db_ == nullptr) return Internal("registry " + path + ": out of memory opening SQLite");
    return db.Error(rc, "cannot open");
  }
  sqlite3_extended_result_codes(db.db_, 1);
  return db;
}

Status Db::Exec(const char* sql) const {
  char* err = nullptr;
  const int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err);
  sqlite3_free(err);  // the same text is available from Error() via sqlite3_errmsg
  if (rc != SQLITE_OK) return Error(rc, "exec");
  return Status::Ok();
}

Result<Stmt> Db::Prepare(std::string_view sql) const {
  sqlite3_stmt* s = nullptr;
  const int rc = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &s, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(s);
    return Error(rc, "prepare");
  }
  return Stmt(this, s);
}

Result<int64_t> Db::QueryInt(const char* sql) const {
  BRICK_ASSIGN_OR_RETURN(Stmt st, Prepare(sql));
  BRICK_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return Internal("registry " + path_ + ": query returned no row: " + sql);
  return st.Int64(0);
}

int64_t Db::LastInsertRowid() const { return sqlite3_last_insert_rowid(db_); }

int64_t Db::MaxBlobBytes() const { return sqlite3_limit(db_, SQLITE_LIMIT_LENGTH, -1); }

void Db::SetBusyTimeout(int ms) const { sqlite3_busy_timeout(db_, ms); }

Status Db::Error(int rc, std::string_view what) const {
  // sqlite3_errmsg describes the connection's most recent failure; fall back to the generic text
  // when rc came from somewhere else (e.g. a blob call that does not set it).
  const bool matches = db_ != nullptr && sqlite3_extended_errcode(db_) == rc;
  const std::string detail = matches ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
  const std::string where = "registry " + path_ + ": " + std::string(what) + ": ";
  switch (rc & 0xff) {
    case SQLITE_NOTADB:
      return InvalidArgument(path_ + " is not a brickrt registry (not a SQLite database: " + detail + ")");
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Unavailable(where + "the registry is busy (another process holds the write lock); try again");
    case SQLITE_CORRUPT:
      return Corrupt(where + detail + "; the registry file is damaged");
    case SQLITE_READONLY:
      return IoError(where + "the registry is read-only here (" + detail + ")");
    case SQLITE_CANTOPEN:
      return IoError(where + detail + " (does the directory exist and is it writable?)");
    case SQLITE_FULL:
    case SQLITE_IOERR:
    case SQLITE_PERM:
      return IoError(where + detail);
    case SQLITE_TOOBIG:
      return OutOfRange(where + detail);
    default:
      return Internal(where + detail);
  }
}

Stmt& Stmt::operator=(Stmt&& o) noexcept {
  if (this != &o) {
    sqlite3_finalize(s_);
    db_ = o.db_;
    s_ = o.s_;
    bind_rc_ = o.bind_rc_;
    o.s_ = nullptr;
  }
  return *this;
}

Stmt::~Stmt() { sqlite3_finalize(s_); }

Stmt& Stmt::BindDouble(int i, double v) {
  const int rc = sqlite3_bind_double(s_, i, v);
  if (bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  return *this;
}

Stmt& Stmt::Bind(int i, int64_t v) {
  const int rc = sqlite3_bind_int64(s_, i, v);
  if (bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  return *this;
}

Stmt& Stmt::Bind(int i, std::string_view v) {
  const int rc = sqlite3_bind_text64(s_, i, v.data(), v.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  if (bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  return *this;
}

Stmt& Stmt::BindNull(int i) {
  const int rc = sqlite3_bind_null(s_, i);
  if (bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  return *this;
}

Stmt& Stmt::BindZeroBlob(int i, int64_t bytes) {
  const int rc = sqlite3_bind_zeroblob64(s_, i, static_cast<sqlite3_uint64>(bytes));
  if (bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  return *this;
}

Result<bool> Stmt::Step() {
  if (bind_rc_ != SQLITE_OK) return db_->Error(bind_rc_, "bind");
  const int rc = sqlite3_step(s_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return db_->Error(rc, "step");
}

Status Stmt::Run() {
  for (;;) {
    BRICK_ASSIGN_OR_RETURN(bool row, Step());
    if (!row) return Status::Ok();
  }
}

void Stmt::Reset() {
  sqlite3_reset(s_);
  sqlite3_clear_bindings(s_);
  bind_rc_ = SQLITE_OK;
}

int64_t Stmt::Int64(int col) const { return sqlite3_column_int64(s_, col); }

double Stmt::Double(int col) const { return sqlite3_column_double(s_, col); }

std::string Stmt::Text(int col) const {
  const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s_, col));
  if (p == nullptr) return {};
  return std::string(p, static_cast<size_t>(sqlite3_column_bytes(s_, col)));
}

bool Stmt::IsNull(int col) const { return sqlite3_column_type(s_, col) == SQLITE_NULL; }

Blob& Blob::operator=(Blob&& o) noexcept {
  if (this != &o) {
    if (b_ != nullptr) sqlite3_blob_close(b_);
    db_ = o.db_;
    b_ = o.b_;
    o.b_ = nullptr;
  }
  return *this;
}

Blob::~Blob() {
  if (b_ != nullptr) sqlite3_blob_close(b_);
}

Result<Blob> Blob::Open(const Db& db, const char* table, const char* column, int64_t rowid, bool writable) {
  Blob b;
  b.db_ = &db;
  const int rc = sqlite3_blob_open(db.get(), "main", table, column, rowid, writable ? 1 : 0, &b.b_);
  if (rc != SQLITE_OK) return db.Error(rc, "open blob");
  return b;
}

int64_t Blob::size() const { return sqlite3_blob_bytes(b_); }

namespace {
// sqlite3_blob_read/write take int sizes and offsets; stay well inside them.
constexpr int64_t kMaxChunk = int64_t{1} << 30;
}  // namespace

Status Blob::Read(void* dst, int64_t n, int64_t offset) const {
  BRICK_ASSERT(offset >= 0 && n >= 0 && offset + n <= size(), "Blob::Read out of range");
  auto* p = static_cast<uint8_t*>(dst);
  while (n > 0) {
    const int64_t c = std::min(n, kMaxChunk);
    const int rc = sqlite3_blob_read(b_, p, static_cast<int>(c), static_cast<int>(offset));
    if (rc != SQLITE_OK) return db_->Error(rc, "read blob");
    p += c;
    offset += c;
    n -= c;
  }
  return Status::Ok();
}

Status Blob::Write(const void* src, int64_t n, int64_t offset) {
  BRICK_ASSERT(offset >= 0 && n >= 0 && offset + n <= size(), "Blob::Write out of range");
  const auto* p = static_cast<const uint8_t*>(src);
  while (n > 0) {
    const int64_t c = std::min(n, kMaxChunk);
    const int rc = sqlite3_blob_write(b_, p, static_cast<int>(c), static_cast<int>(offset));
    if (rc != SQLITE_OK) return db_->Error(rc, "write blob");
    p += c;
    offset += c;
    n -= c;
  }
  return Status::Ok();
}

Result<Transaction> Transaction::Begin(const Db& db) {
  BRICK_RETURN_IF_ERROR(db.Exec("BEGIN IMMEDIATE"));
  return Transaction(&db);
}

Transaction::~Transaction() {
  if (db_ != nullptr) (void)db_->Exec("ROLLBACK");
}

Status Transaction::Commit() {
  const Db* db = db_;
  db_ = nullptr;
  Status st = db->Exec("COMMIT");
  // A failed COMMIT (e.g. SQLITE_BUSY) leaves the transaction open: roll it back so the connection
  // is usable and nothing of the failed write remains.
  if (!st.ok()) (void)db->Exec("ROLLBACK");
  return st;
}

}  // namespace brickrt::sqlite
