#include "metadata/sqlite_db.h"

#include <chrono>
#include <string>
#include <system_error>
#include <thread>
#include <utility>

#include <sqlite3.h>

#include "common/clock.h"

namespace hearth::metadata {

namespace {

Status StatusForCode(int rc, std::string message) {
  int primary = rc & 0xff;
  if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED) return Unavailable(std::move(message));
  return Internal(std::move(message));
}

}  // namespace

Status SqliteError(sqlite3* db, int rc, std::string_view what) {
  std::string message(what);
  message += ": ";
  // sqlite3_errmsg describes the connection's last error, which is this one unless the caller
  // passes a code from elsewhere; sqlite3_errstr always matches `rc`.
  message +=
      db != nullptr && sqlite3_extended_errcode(db) == rc ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  return StatusForCode(rc, std::move(message));
}

// ---- SqliteStatement ----

SqliteStatement::~SqliteStatement() {
  if (stmt_ != nullptr) sqlite3_finalize(stmt_);
}

SqliteStatement::SqliteStatement(SqliteStatement&& other) noexcept
    : db_(other.db_), stmt_(other.stmt_), bind_error_(other.bind_error_) {
  other.stmt_ = nullptr;
}

SqliteStatement& SqliteStatement::operator=(SqliteStatement&& other) noexcept {
  if (this != &other) {
    if (stmt_ != nullptr) sqlite3_finalize(stmt_);
    db_ = other.db_;
    stmt_ = other.stmt_;
    bind_error_ = other.bind_error_;
    other.stmt_ = nullptr;
  }
  return *this;
}

void SqliteStatement::NoteBindError(int rc) {
  if (rc != SQLITE_OK && bind_error_ == 0) bind_error_ = rc;
}

SqliteStatement& SqliteStatement::Bind(int index, std::int64_t value) {
  NoteBindError(sqlite3_bind_int64(stmt_, index, value));
  return *this;
}

SqliteStatement& SqliteStatement::Bind(int index, double value) {
  NoteBindError(sqlite3_bind_double(stmt_, index, value));
  return *this;
}

SqliteStatement& SqliteStatement::Bind(int index, std::string_view value) {
  NoteBindError(
      sqlite3_bind_text64(stmt_, index, value.data(), value.size(), SQLITE_TRANSIENT, SQLITE_UTF8));
  return *this;
}

SqliteStatement& SqliteStatement::Bind(int index, std::optional<std::int64_t> value) {
  return value ? Bind(index, *value) : BindNull(index);
}

SqliteStatement& SqliteStatement::BindNull(int index) {
  NoteBindError(sqlite3_bind_null(stmt_, index));
  return *this;
}

Result<bool> SqliteStatement::Step() {
  if (bind_error_ != 0) return SqliteError(db_, bind_error_, "binding a parameter");
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return SqliteError(db_, rc, std::string("running \"") + sqlite3_sql(stmt_) + "\"");
}

Status SqliteStatement::Run() {
  while (true) {
    ASSIGN_OR_RETURN(bool row, Step());
    if (!row) return Status::Ok();
  }
}

void SqliteStatement::Reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
  bind_error_ = 0;
}

std::int64_t SqliteStatement::ColumnInt64(int column) const {
  return sqlite3_column_int64(stmt_, column);
}

double SqliteStatement::ColumnDouble(int column) const {
  return sqlite3_column_double(stmt_, column);
}

std::string SqliteStatement::ColumnText(int column) const {
  // Text first, then bytes: sqlite3_column_bytes after _text gives the UTF-8 length.
  const unsigned char* text = sqlite3_column_text(stmt_, column);
  if (text == nullptr) return {};
  return std::string(reinterpret_cast<const char*>(text),
                     static_cast<std::size_t>(sqlite3_column_bytes(stmt_, column)));
}

bool SqliteStatement::ColumnIsNull(int column) const {
  return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
}

std::optional<std::int64_t> SqliteStatement::ColumnOptionalInt64(int column) const {
  if (ColumnIsNull(column)) return std::nullopt;
  return ColumnInt64(column);
}

// ---- SqliteDb ----

Result<std::unique_ptr<SqliteDb>> SqliteDb::Open(const SqliteOpenOptions& options) {
  const std::string path = options.path.string();
  const bool in_memory = path == ":memory:";
  if (path.empty()) return InvalidArgument("SQLite database path is empty");
  if (!in_memory && options.path.has_parent_path()) {
    std::error_code ec;
    std::filesystem::create_directories(options.path.parent_path(), ec);
    if (ec) {
      return Internal("creating directory " + options.path.parent_path().string() + ": " +
                      ec.message());
    }
  }

  sqlite3* raw = nullptr;
  int rc =
      sqlite3_open_v2(path.c_str(), &raw,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  // sqlite3_open_v2 hands back a handle even on failure; it must be closed either way.
  std::unique_ptr<SqliteDb> db(new SqliteDb(raw));
  if (rc != SQLITE_OK) return SqliteError(raw, rc, "opening SQLite database " + path);
  sqlite3_extended_result_codes(raw, 1);

  rc = sqlite3_busy_timeout(raw, static_cast<int>(options.busy_timeout.count()));
  if (rc != SQLITE_OK) return SqliteError(raw, rc, "setting busy_timeout");
  RETURN_IF_ERROR(db->Exec("PRAGMA foreign_keys = ON"));
  if (!in_memory) {
    // journal_mode answers with the mode now in force; a filesystem without shared memory
    // support keeps the rollback journal, which is slower but still correct.
    // Switching to WAL needs a moment of exclusive access and does not wait on the busy
    // handler: when several connections open a new file at once, retry until busy_timeout.
    const auto deadline = std::chrono::steady_clock::now() + options.busy_timeout;
    while (true) {
      ASSIGN_OR_RETURN(auto pragma, db->Prepare("PRAGMA journal_mode = WAL"));
      Status switched = pragma.Run();
      if (switched.ok()) break;
      if (switched.code() != StatusCode::kUnavailable ||
          std::chrono::steady_clock::now() >= deadline) {
        return switched;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  if (options.synchronous != "FULL" && options.synchronous != "NORMAL" &&
      options.synchronous != "OFF" && options.synchronous != "EXTRA") {
    return InvalidArgument("synchronous must be OFF, NORMAL, FULL or EXTRA");
  }
  RETURN_IF_ERROR(db->Exec("PRAGMA synchronous = " + options.synchronous));
  return db;
}

SqliteDb::~SqliteDb() {
  // sqlite3_close_v2 defers the close until outstanding statements are finalized, so a
  // statement destroyed after the connection cannot crash.
  if (db_ != nullptr) sqlite3_close_v2(db_);
}

Status SqliteDb::Exec(std::string_view sql) {
  std::string text(sql);
  char* error = nullptr;
  int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &error);
  if (rc == SQLITE_OK) return Status::Ok();
  std::string detail = error != nullptr ? error : sqlite3_errstr(rc);
  sqlite3_free(error);
  return StatusForCode(rc, "running \"" + text + "\": " + detail);
}

Result<SqliteStatement> SqliteDb::Prepare(std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr);
  if (rc != SQLITE_OK) {
    if (stmt != nullptr) sqlite3_finalize(stmt);
    return SqliteError(db_, rc, "preparing \"" + std::string(sql) + "\"");
  }
  if (stmt == nullptr) return Internal("preparing an empty SQL statement");
  return SqliteStatement(db_, stmt);
}

std::int64_t SqliteDb::Changes() const { return sqlite3_changes64(db_); }

Status SqliteDb::Migrate(const std::vector<std::string_view>& migrations) {
  // The version table itself is created outside the numbered list so that every later step
  // can be recorded in it. CREATE TABLE IF NOT EXISTS is idempotent under concurrent opens.
  ASSIGN_OR_RETURN(auto txn, SqliteTransaction::Begin(*this));
  RETURN_IF_ERROR(
      Exec("CREATE TABLE IF NOT EXISTS schema_version ("
           " version BIGINT NOT NULL PRIMARY KEY,"
           " applied_millis BIGINT NOT NULL)"));
  ASSIGN_OR_RETURN(auto current_stmt,
                   Prepare("SELECT COALESCE(MAX(version), 0) FROM schema_version"));
  ASSIGN_OR_RETURN(bool row, current_stmt.Step());
  std::int64_t current = row ? current_stmt.ColumnInt64(0) : 0;
  const auto known = static_cast<std::int64_t>(migrations.size());
  if (current > known) {
    return FailedPrecondition("database schema version " + std::to_string(current) +
                              " is newer than this build supports (" + std::to_string(known) + ")");
  }
  for (std::int64_t v = current + 1; v <= known; ++v) {
    RETURN_IF_ERROR(Exec(migrations[static_cast<std::size_t>(v - 1)]));
    ASSIGN_OR_RETURN(auto record,
                     Prepare("INSERT INTO schema_version (version, applied_millis) VALUES (?, ?)"));
    RETURN_IF_ERROR(record.Bind(1, v).Bind(2, NowMillis()).Run());
  }
  return txn.Commit();
}

// ---- SqliteTransaction ----

Result<SqliteTransaction> SqliteTransaction::Begin(SqliteDb& db) {
  RETURN_IF_ERROR(db.Exec("BEGIN IMMEDIATE"));
  return SqliteTransaction(&db);
}

SqliteTransaction::~SqliteTransaction() {
  if (db_ != nullptr) db_->Exec("ROLLBACK").IgnoreError();
}

Status SqliteTransaction::Commit() {
  if (db_ == nullptr) return Internal("transaction already finished");
  Status status = db_->Exec("COMMIT");
  if (status.ok()) db_ = nullptr;  // on failure the destructor still rolls back
  return status;
}

}  // namespace hearth::metadata
