// A thin RAII layer over SQLite's C API: a connection (SqliteDb), a prepared statement
// (SqliteStatement) and a write transaction (SqliteTransaction). Every SQLite failure becomes a
// Status: SQLITE_BUSY/LOCKED -> Unavailable (another connection held the write lock past the
// busy timeout), anything else -> Internal with SQLite's message.
//
// Only the SQLite stores use this; callers of MetadataStore/LogStore never see it.
//
// Thread safety: none. A SqliteDb and its statements must be used by one thread at a time
// (the stores hold a mutex around every use).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

struct sqlite3;
struct sqlite3_stmt;

namespace hearth::metadata {

struct SqliteOpenOptions {
  std::filesystem::path path;  // ":memory:" opens a private in-memory database
  std::chrono::milliseconds busy_timeout{10000};
  // "FULL" survives power loss; "NORMAL" (in WAL mode) survives process crashes only.
  std::string synchronous = "FULL";
};

class SqliteStatement {
 public:
  SqliteStatement() = default;
  ~SqliteStatement();
  SqliteStatement(SqliteStatement&& other) noexcept;
  SqliteStatement& operator=(SqliteStatement&& other) noexcept;
  SqliteStatement(const SqliteStatement&) = delete;
  SqliteStatement& operator=(const SqliteStatement&) = delete;

  // Parameters are 1-based, as in SQL's `?` numbering. Text is copied by SQLite.
  SqliteStatement& Bind(int index, std::int64_t value);
  SqliteStatement& Bind(int index, int value) { return Bind(index, std::int64_t{value}); }
  SqliteStatement& Bind(int index, double value);
  SqliteStatement& Bind(int index, std::string_view value);
  SqliteStatement& Bind(int index, const char* value) {
    return Bind(index, std::string_view(value));
  }
  SqliteStatement& Bind(int index, const std::string& value) {
    return Bind(index, std::string_view(value));
  }
  SqliteStatement& Bind(int index, std::optional<std::int64_t> value);
  SqliteStatement& BindNull(int index);

  // Advances to the next row: true while a row is available, false when done. The first Bind
  // error (if any) is reported here.
  Result<bool> Step();
  // Steps until done; for statements that return no rows.
  Status Run();
  // Makes the statement reusable with new bindings.
  void Reset();

  // Columns are 0-based, as in SQLite's C API. Valid only after Step() returned true.
  std::int64_t ColumnInt64(int column) const;
  double ColumnDouble(int column) const;
  std::string ColumnText(int column) const;
  bool ColumnIsNull(int column) const;
  std::optional<std::int64_t> ColumnOptionalInt64(int column) const;

 private:
  friend class SqliteDb;
  SqliteStatement(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  void NoteBindError(int rc);

  sqlite3* db_ = nullptr;
  sqlite3_stmt* stmt_ = nullptr;
  int bind_error_ = 0;  // first failed bind's result code; 0 when none
};

class SqliteDb {
 public:
  // Opens (creating if needed) the database, creating missing parent directories of a file
  // path, and sets busy_timeout, foreign_keys=ON, journal_mode=WAL (file databases) and
  // `synchronous`.
  static Result<std::unique_ptr<SqliteDb>> Open(const SqliteOpenOptions& options);
  ~SqliteDb();
  SqliteDb(const SqliteDb&) = delete;
  SqliteDb& operator=(const SqliteDb&) = delete;

  // Runs one or more statements without parameters.
  Status Exec(std::string_view sql);
  // The statement must not outlive this connection.
  Result<SqliteStatement> Prepare(std::string_view sql);
  // Rows changed by the most recent INSERT/UPDATE/DELETE on this connection.
  std::int64_t Changes() const;

  // Applies `migrations[i]` for every i >= the stored schema version, in order, each recorded in
  // `schema_version`, all inside one write transaction: connections opening the same file at
  // once serialize on it, and the later ones find nothing left to do. FailedPrecondition if the
  // file was written by a newer schema than `migrations` knows.
  Status Migrate(const std::vector<std::string_view>& migrations);

 private:
  explicit SqliteDb(sqlite3* db) : db_(db) {}
  sqlite3* db_;
};

// A write transaction. BEGIN IMMEDIATE takes the write lock up front so that a read-then-write
// never fails half-way with SQLITE_BUSY (a deferred transaction cannot wait for the lock once
// it has read). Rolls back on destruction unless committed.
class SqliteTransaction {
 public:
  static Result<SqliteTransaction> Begin(SqliteDb& db);
  SqliteTransaction(SqliteTransaction&& other) noexcept : db_(other.db_) { other.db_ = nullptr; }
  SqliteTransaction& operator=(SqliteTransaction&&) = delete;
  SqliteTransaction(const SqliteTransaction&) = delete;
  ~SqliteTransaction();

  Status Commit();

 private:
  explicit SqliteTransaction(SqliteDb* db) : db_(db) {}
  SqliteDb* db_;  // null once committed or rolled back
};

// A Status for SQLite result code `rc` on `db`, prefixed with `what`.
Status SqliteError(sqlite3* db, int rc, std::string_view what);

}  // namespace hearth::metadata
