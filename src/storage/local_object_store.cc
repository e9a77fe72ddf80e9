#include "storage/local_object_store.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <functional>
#include <iterator>
#include <mutex>
#include <system_error>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include <fcntl.h>
#include <nlohmann/json.hpp>
#include <sqlite3.h>
#include <sys/file.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/crypto.h"
#include "common/fs.h"
#include "common/ids.h"

namespace hearth::storage {

namespace fs = std::filesystem;

namespace {

constexpr std::uint64_t kMinPartBytes = 5ull << 20;
constexpr int kMaxPartNumber = 10000;
constexpr std::size_t kMaxKeyBytes = 1024;
// Appends smaller than this are gathered so that many tiny writes cost few syscalls.
constexpr std::size_t kWriteBufferBytes = 1 << 20;
constexpr std::size_t kCopyChunkBytes = 1 << 20;

Status ErrnoStatus(std::string_view what, const fs::path& path, int err) {
  return Internal(std::string(what) + " " + path.string() + ": " + std::strerror(err));
}

// ---------------------------------------------------------------------------------------------
// File descriptors and byte copying.

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) {
      Reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { Reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  // Closes now and reports the error, which matters for the last write of a file.
  int Close() {
    int rc = fd_ >= 0 ? ::close(fd_) : 0;
    fd_ = -1;
    return rc;
  }

 private:
  void Reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  int fd_ = -1;
};

Status WriteAll(int fd, std::string_view data, const fs::path& path) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("write", path, errno);
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return Status::Ok();
}

// Appends bytes [0, size) of `src` at the current offset of `dst`. `src`'s own offset is left
// alone, so a descriptor shared with readers stays usable.
Status CopyFdPrefix(int src, std::uint64_t size, int dst, const fs::path& dst_path) {
  off_t in_off = 0;
  std::uint64_t remaining = size;
  // copy_file_range keeps the bytes in the kernel (and may share extents); it is refused by
  // some filesystems, in which case the plain loop below does the rest.
  while (remaining > 0) {
    ssize_t n = ::copy_file_range(
        src, &in_off, dst, nullptr,
        static_cast<std::size_t>(std::min<std::uint64_t>(remaining, 1u << 30)), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EXDEV || errno == ENOSYS || errno == EINVAL || errno == EOPNOTSUPP ||
          errno == EBADF) {
        break;
      }
      return ErrnoStatus("copy to", dst_path, errno);
    }
    if (n == 0)
      return Internal("blob is shorter than its index entry while copying to " + dst_path.string());
    remaining -= static_cast<std::uint64_t>(n);
  }
  std::string buffer;
  while (remaining > 0) {
    buffer.resize(static_cast<std::size_t>(std::min<std::uint64_t>(remaining, kCopyChunkBytes)));
    ssize_t n = ::pread(src, buffer.data(), buffer.size(), in_off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("read for copy to", dst_path, errno);
    }
    if (n == 0)
      return Internal("blob is shorter than its index entry while copying to " + dst_path.string());
    RETURN_IF_ERROR(
        WriteAll(dst, std::string_view(buffer.data(), static_cast<std::size_t>(n)), dst_path));
    in_off += n;
    remaining -= static_cast<std::uint64_t>(n);
  }
  return Status::Ok();
}

// A file in staging/ that becomes an immutable blob when published. Destroying an unpublished
// one removes it.
class StagingFile {
 public:
  static Result<std::unique_ptr<StagingFile>> Create(const fs::path& staging_dir) {
    fs::path path = staging_dir / (NewUuid() + ".tmp");
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) return ErrnoStatus("create", path, errno);
    return std::unique_ptr<StagingFile>(new StagingFile(std::move(path), UniqueFd(fd)));
  }

  StagingFile(const StagingFile&) = delete;
  StagingFile& operator=(const StagingFile&) = delete;
  ~StagingFile() {
    fd_.Close();
    if (!published_) ::unlink(path_.c_str());
  }

  Status Write(std::string_view data) { return WriteAll(fd_.get(), data, path_); }
  Status CopyFrom(int src, std::uint64_t size) { return CopyFdPrefix(src, size, fd_.get(), path_); }

  // fsyncs the file, renames it into `blobs_dir` under a fresh name and fsyncs the directory,
  // so that an index row pointing at the returned name never outlives a crash without its file.
  Result<std::string> Publish(const fs::path& blobs_dir) {
    if (::fsync(fd_.get()) != 0) return ErrnoStatus("fsync", path_, errno);
    if (fd_.Close() != 0) return ErrnoStatus("close", path_, errno);
    std::string name = NewUuid();
    fs::path dest = blobs_dir / name;
    if (::rename(path_.c_str(), dest.c_str()) != 0) return ErrnoStatus("rename", path_, errno);
    published_ = true;
    Status synced = FsyncPath(blobs_dir);
    if (!synced.ok()) {
      ::unlink(dest.c_str());
      return synced;
    }
    return name;
  }

 private:
  StagingFile(fs::path path, UniqueFd fd) : path_(std::move(path)), fd_(std::move(fd)) {}

  fs::path path_;
  UniqueFd fd_;
  bool published_ = false;
};

// ---------------------------------------------------------------------------------------------
// SQLite: a connection with a statement cache, a borrowed statement that resets itself, and a
// write transaction that rolls back unless committed.

const char* NonNull(std::string_view v) { return v.data() != nullptr ? v.data() : ""; }

class Statement {
 public:
  explicit Statement(sqlite3_stmt* stmt) : stmt_(stmt) {}
  Statement(Statement&& other) noexcept : stmt_(std::exchange(other.stmt_, nullptr)) {}
  Statement& operator=(Statement&&) = delete;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  // The statement is cached by its Database: hand it back clean, which also ends the implicit
  // read transaction a stepped statement holds open.
  ~Statement() {
    if (stmt_ != nullptr) {
      sqlite3_reset(stmt_);
      sqlite3_clear_bindings(stmt_);
    }
  }

  Statement& BindText(int index, std::string_view value) {
    sqlite3_bind_text(stmt_, index, NonNull(value), static_cast<int>(value.size()),
                      SQLITE_TRANSIENT);
    return *this;
  }
  // Keys are bound as blobs so that comparisons are plain byte order (S3's order) whatever the
  // bytes are.
  Statement& BindBlob(int index, std::string_view value) {
    sqlite3_bind_blob(stmt_, index, NonNull(value), static_cast<int>(value.size()),
                      SQLITE_TRANSIENT);
    return *this;
  }
  Statement& BindInt(int index, std::int64_t value) {
    sqlite3_bind_int64(stmt_, index, value);
    return *this;
  }

  // True when a row is ready, false when the statement has finished.
  Result<bool> Step() {
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return Internal(std::string("sqlite: ") + sqlite3_errmsg(sqlite3_db_handle(stmt_)));
  }
  Status Run() {
    ASSIGN_OR_RETURN(bool row, Step());
    (void)row;
    return Status::Ok();
  }

  std::string Text(int col) const {
    const unsigned char* p = sqlite3_column_text(stmt_, col);
    int n = sqlite3_column_bytes(stmt_, col);
    return p != nullptr ? std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(n))
                        : std::string();
  }
  std::string Blob(int col) const {
    const void* p = sqlite3_column_blob(stmt_, col);
    int n = sqlite3_column_bytes(stmt_, col);
    return p != nullptr ? std::string(static_cast<const char*>(p), static_cast<std::size_t>(n))
                        : std::string();
  }
  std::int64_t Int(int col) const { return sqlite3_column_int64(stmt_, col); }

 private:
  sqlite3_stmt* stmt_;
};

class Database {
 public:
  static Result<std::unique_ptr<Database>> Open(const fs::path& path) {
    sqlite3* db = nullptr;
    // NOMUTEX: every connection is used under its owner's mutex.
    int rc =
        sqlite3_open_v2(path.c_str(), &db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
    if (rc != SQLITE_OK) {
      std::string msg = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
      sqlite3_close(db);
      return Internal("open " + path.string() + ": " + msg);
    }
    std::unique_ptr<Database> database(new Database(db));
    sqlite3_busy_timeout(db, 10000);
    // WAL lets the read connection run beside the writer; synchronous=FULL makes each commit
    // durable before it returns, which the store's contract promises.
    RETURN_IF_ERROR(database->Exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"));
    return database;
  }

  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;
  ~Database() {
    for (auto& [sql, stmt] : cache_) sqlite3_finalize(stmt);
    sqlite3_close(db_);
  }

  Result<Statement> Prepare(const std::string& sql) {
    auto it = cache_.find(sql);
    if (it != cache_.end()) return Statement(it->second);
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v3(db_, sql.c_str(), -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr) !=
        SQLITE_OK) {
      return Internal(std::string("sqlite prepare: ") + sqlite3_errmsg(db_));
    }
    cache_.emplace(sql, stmt);
    return Statement(stmt);
  }

  Status Exec(const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
      std::string msg = err != nullptr ? err : sqlite3_errmsg(db_);
      sqlite3_free(err);
      return Internal("sqlite: " + msg);
    }
    return Status::Ok();
  }

  int Changes() const { return sqlite3_changes(db_); }

 private:
  explicit Database(sqlite3* db) : db_(db) {}

  sqlite3* db_;
  std::unordered_map<std::string, sqlite3_stmt*> cache_;
};

class Transaction {
 public:
  explicit Transaction(Database& db) : db_(db) {}
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction() {
    if (open_) db_.Exec("ROLLBACK").IgnoreError();
  }

  Status Begin() {
    RETURN_IF_ERROR(db_.Exec("BEGIN IMMEDIATE"));
    open_ = true;
    return Status::Ok();
  }
  Status Commit() {
    RETURN_IF_ERROR(db_.Exec("COMMIT"));
    open_ = false;
    return Status::Ok();
  }

 private:
  Database& db_;
  bool open_ = false;
};

// Each entry upgrades the schema by one version; entry i takes version i to i + 1. Append only.
constexpr const char* kMigrations[] = {
    R"sql(
CREATE TABLE buckets (
  name TEXT PRIMARY KEY,
  created_millis INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE objects (
  bucket TEXT NOT NULL,
  key BLOB NOT NULL,
  blob TEXT NOT NULL,
  size INTEGER NOT NULL,
  etag TEXT NOT NULL,
  content_type TEXT NOT NULL,
  user_metadata TEXT NOT NULL,
  last_modified INTEGER NOT NULL,
  PRIMARY KEY (bucket, key)
) WITHOUT ROWID;
CREATE TABLE uploads (
  upload_id TEXT PRIMARY KEY,
  bucket TEXT NOT NULL,
  key BLOB NOT NULL,
  content_type TEXT NOT NULL,
  user_metadata TEXT NOT NULL,
  initiated_millis INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX uploads_by_bucket ON uploads (bucket, key, initiated_millis);
CREATE TABLE parts (
  upload_id TEXT NOT NULL,
  part_number INTEGER NOT NULL,
  blob TEXT NOT NULL,
  size INTEGER NOT NULL,
  etag TEXT NOT NULL,
  last_modified INTEGER NOT NULL,
  PRIMARY KEY (upload_id, part_number)
) WITHOUT ROWID;
)sql",
};
constexpr std::int64_t kSchemaVersion = std::size(kMigrations);

Status Migrate(Database& db) {
  RETURN_IF_ERROR(db.Exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"));
  std::int64_t version = 0;
  {
    ASSIGN_OR_RETURN(Statement stmt, db.Prepare("SELECT MAX(version) FROM schema_version"));
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (row) version = stmt.Int(0);
  }
  if (version > kSchemaVersion) {
    return FailedPrecondition("index.db has schema version " + std::to_string(version) +
                              ", newer than this build understands (" +
                              std::to_string(kSchemaVersion) + ")");
  }
  for (; version < kSchemaVersion; ++version) {
    Transaction txn(db);
    RETURN_IF_ERROR(txn.Begin());
    RETURN_IF_ERROR(db.Exec(kMigrations[version]));
    RETURN_IF_ERROR(db.Exec("DELETE FROM schema_version"));
    ASSIGN_OR_RETURN(Statement stmt, db.Prepare("INSERT INTO schema_version (version) VALUES (?)"));
    RETURN_IF_ERROR(stmt.BindInt(1, version + 1).Run());
    RETURN_IF_ERROR(txn.Commit());
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// Validation and small encodings.

bool IsAsciiAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

bool LooksLikeIpv4(std::string_view name) {
  int groups = 0;
  std::size_t start = 0;
  while (true) {
    std::size_t dot = name.find('.', start);
    std::string_view group =
        name.substr(start, dot == std::string_view::npos ? name.npos : dot - start);
    if (group.empty() || group.size() > 3 ||
        !std::all_of(group.begin(), group.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return false;
    }
    ++groups;
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return groups == 4;
}

Status ValidateBucketName(std::string_view name) {
  auto bad = [&](std::string_view rule) {
    return InvalidArgument("invalid bucket name '" + std::string(name) + "': " + std::string(rule),
                           "InvalidBucketName");
  };
  if (name.size() < 3 || name.size() > 63) return bad("must be 3 to 63 characters long");
  for (char c : name) {
    if (!IsAsciiAlnum(c) && c != '.' && c != '-') {
      return bad("may contain only lower-case letters, digits, '.' and '-'");
    }
  }
  if (!IsAsciiAlnum(name.front()) || !IsAsciiAlnum(name.back())) {
    return bad("must begin and end with a letter or digit");
  }
  if (name.find("..") != std::string_view::npos) return bad("must not contain '..'");
  if (LooksLikeIpv4(name)) return bad("must not be formatted as an IP address");
  if (name.starts_with("xn--")) return bad("must not start with 'xn--'");
  if (name.ends_with("-s3alias")) return bad("must not end with '-s3alias'");
  return Status::Ok();
}

Status ValidateKey(std::string_view key) {
  if (key.empty()) return InvalidArgument("object key must not be empty");
  if (key.size() > kMaxKeyBytes) {
    return InvalidArgument(
        "object key is " + std::to_string(key.size()) + " bytes; at most 1024 are allowed",
        "KeyTooLongError");
  }
  return Status::Ok();
}

std::string EncodeMetadata(const std::map<std::string, std::string>& metadata) {
  nlohmann::json json = nlohmann::json::object();
  for (const auto& [name, value] : metadata) json[name] = value;
  // replace: invalid UTF-8 from a client must not turn into an exception here.
  return json.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::map<std::string, std::string> DecodeMetadata(std::string_view text) {
  std::map<std::string, std::string> metadata;
  nlohmann::json json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!json.is_object()) return metadata;
  for (const auto& [name, value] : json.items()) {
    if (value.is_string()) metadata.emplace(name, value.get<std::string>());
  }
  return metadata;
}

// The smallest string greater than every string that starts with `prefix`; none when every
// byte is 0xFF (or the prefix is empty).
std::optional<std::string> PrefixSuccessor(std::string prefix) {
  while (!prefix.empty() && static_cast<unsigned char>(prefix.back()) == 0xFF) prefix.pop_back();
  if (prefix.empty()) return std::nullopt;
  prefix.back() = static_cast<char>(static_cast<unsigned char>(prefix.back()) + 1);
  return prefix;
}

// Clients quote ETags and may use either case.
std::string NormalizeEtag(std::string_view etag) {
  while (!etag.empty() && etag.front() == '"') etag.remove_prefix(1);
  while (!etag.empty() && etag.back() == '"') etag.remove_suffix(1);
  std::string out(etag);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// Our own hex ETags only, so the input is well formed.
std::string HexDecode(std::string_view hex) {
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return 0;
  };
  std::string out(hex.size() / 2, '\0');
  for (std::size_t i = 0; i < out.size(); ++i) {
    out[i] = static_cast<char>((nibble(hex[2 * i]) << 4) | nibble(hex[2 * i + 1]));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Index queries shared by several operations. Each runs on whichever connection the caller
// holds the lock of.

Status RequireBucket(Database& db, std::string_view bucket) {
  ASSIGN_OR_RETURN(Statement stmt, db.Prepare("SELECT 1 FROM buckets WHERE name = ?"));
  ASSIGN_OR_RETURN(bool found, stmt.BindText(1, bucket).Step());
  if (!found)
    return NotFound("bucket '" + std::string(bucket) + "' does not exist", "NoSuchBucket");
  return Status::Ok();
}

struct UploadRow {
  std::string content_type;
  std::string user_metadata;
};

Result<UploadRow> RequireUpload(Database& db, std::string_view bucket, std::string_view key,
                                std::string_view upload_id) {
  {
    ASSIGN_OR_RETURN(Statement stmt,
                     db.Prepare("SELECT content_type, user_metadata FROM uploads "
                                "WHERE upload_id = ?1 AND bucket = ?2 AND key = ?3"));
    ASSIGN_OR_RETURN(bool found,
                     stmt.BindText(1, upload_id).BindText(2, bucket).BindBlob(3, key).Step());
    if (found) return UploadRow{stmt.Text(0), stmt.Text(1)};
  }
  RETURN_IF_ERROR(RequireBucket(db, bucket));
  return NotFound(
      "upload '" + std::string(upload_id) + "' does not exist for key '" + std::string(key) + "'",
      "NoSuchUpload");
}

struct ObjectRow {
  ObjectInfo info;
  std::string blob;
};

Result<ObjectRow> LookupObject(Database& db, std::string_view bucket, std::string_view key) {
  {
    ASSIGN_OR_RETURN(Statement stmt,
                     db.Prepare("SELECT blob, size, etag, last_modified, content_type, "
                                "user_metadata FROM objects WHERE bucket = ?1 AND key = ?2"));
    ASSIGN_OR_RETURN(bool found, stmt.BindText(1, bucket).BindBlob(2, key).Step());
    if (found) {
      ObjectRow row;
      row.blob = stmt.Text(0);
      row.info.key = std::string(key);
      row.info.size = static_cast<std::uint64_t>(stmt.Int(1));
      row.info.etag = stmt.Text(2);
      row.info.last_modified_millis = stmt.Int(3);
      row.info.content_type = stmt.Text(4);
      row.info.user_metadata = DecodeMetadata(stmt.Text(5));
      return row;
    }
  }
  RETURN_IF_ERROR(RequireBucket(db, bucket));
  return NotFound(
      "key '" + std::string(key) + "' does not exist in bucket '" + std::string(bucket) + "'",
      "NoSuchKey");
}

// Points (bucket, info.key) at `blob` and adds the blob it replaces, if any, to `garbage`.
// The caller holds a write transaction and has checked the bucket.
Status UpsertObjectRow(Database& db, std::string_view bucket, const ObjectInfo& info,
                       std::string_view blob, std::vector<std::string>* garbage) {
  {
    ASSIGN_OR_RETURN(Statement stmt,
                     db.Prepare("SELECT blob FROM objects WHERE bucket = ?1 AND key = ?2"));
    ASSIGN_OR_RETURN(bool found, stmt.BindText(1, bucket).BindBlob(2, info.key).Step());
    if (found) garbage->push_back(stmt.Text(0));
  }
  ASSIGN_OR_RETURN(Statement stmt,
                   db.Prepare("INSERT OR REPLACE INTO objects (bucket, key, blob, size, etag, "
                              "content_type, user_metadata, last_modified) "
                              "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"));
  return stmt.BindText(1, bucket)
      .BindBlob(2, info.key)
      .BindText(3, blob)
      .BindInt(4, static_cast<std::int64_t>(info.size))
      .BindText(5, info.etag)
      .BindText(6, info.content_type)
      .BindText(7, EncodeMetadata(info.user_metadata))
      .BindInt(8, info.last_modified_millis)
      .Run();
}

// ---------------------------------------------------------------------------------------------
// The shared state. Writers keep a reference so that a writer outliving its store stays safe.

class Core {
 public:
  fs::path root;
  fs::path blobs_dir;
  fs::path staging_dir;
  UniqueFd lock_fd;  // flock on <root>/LOCK: one process owns the directory

  // All mutations go through write_db under write_mu; they are short (the bytes are already
  // on disk when the lock is taken).
  std::mutex write_mu;
  std::unique_ptr<Database> write_db;  // guarded by write_mu
  // Lookups use their own connection so they do not wait for a writer's commit fsync.
  std::mutex read_mu;
  std::unique_ptr<Database> read_db;  // guarded by read_mu

  fs::path BlobPath(std::string_view name) const { return blobs_dir / name; }

  // Best effort: a blob left behind is an orphan that the next Open() removes.
  void UnlinkBlob(const std::string& name) const { ::unlink(BlobPath(name).c_str()); }
  void UnlinkBlobs(const std::vector<std::string>& names) const {
    for (const std::string& name : names) UnlinkBlob(name);
  }

  // The one way a new blob (already durable in blobs/) becomes visible: `write` runs in one
  // write transaction and lists the blobs it replaced in `garbage`. If anything fails the new
  // blob is removed, since nothing refers to it; once committed, the replaced ones are.
  using BlobWrite = std::function<Status(Database& db, std::vector<std::string>* garbage)>;
  Status PublishBlob(const std::string& blob, const BlobWrite& write) {
    std::vector<std::string> garbage;
    Status status = [&]() -> Status {
      std::lock_guard lock(write_mu);
      Transaction txn(*write_db);
      RETURN_IF_ERROR(txn.Begin());
      RETURN_IF_ERROR(write(*write_db, &garbage));
      return txn.Commit();
    }();
    if (!status.ok()) {
      UnlinkBlob(blob);
      return status;
    }
    UnlinkBlobs(garbage);
    return Status::Ok();
  }

  // Publishes a blob as the object (bucket, info.key).
  Result<ObjectInfo> PublishObject(const std::string& bucket, const ObjectInfo& info,
                                   const std::string& blob) {
    RETURN_IF_ERROR(PublishBlob(blob, [&](Database& db, std::vector<std::string>* garbage) {
      RETURN_IF_ERROR(RequireBucket(db, bucket));
      return UpsertObjectRow(db, bucket, info, blob, garbage);
    }));
    return info;
  }

  Result<ObjectInfo> PublishPart(const std::string& bucket, const std::string& key,
                                 const std::string& upload_id, int part_number,
                                 const ObjectInfo& info, const std::string& blob) {
    RETURN_IF_ERROR(PublishBlob(blob, [&](Database& db, std::vector<std::string>* garbage) {
      RETURN_IF_ERROR(RequireUpload(db, bucket, key, upload_id).status());
      {
        ASSIGN_OR_RETURN(Statement stmt,
                         db.Prepare("SELECT blob FROM parts WHERE upload_id = ?1 AND "
                                    "part_number = ?2"));
        ASSIGN_OR_RETURN(bool found, stmt.BindText(1, upload_id).BindInt(2, part_number).Step());
        if (found) garbage->push_back(stmt.Text(0));
      }
      ASSIGN_OR_RETURN(Statement stmt,
                       db.Prepare("INSERT OR REPLACE INTO parts (upload_id, part_number, blob, "
                                  "size, etag, last_modified) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"));
      RETURN_IF_ERROR(stmt.BindText(1, upload_id)
                          .BindInt(2, part_number)
                          .BindText(3, blob)
                          .BindInt(4, static_cast<std::int64_t>(info.size))
                          .BindText(5, info.etag)
                          .BindInt(6, info.last_modified_millis)
                          .Run());
      return Status::Ok();
    }));
    return info;
  }

  // Removes what a crash can leave behind: staging files, and blobs no index row refers to
  // (written but never published, or replaced but not yet unlinked).
  Status RemoveLeftovers() {
    std::error_code ec;
    for (auto it = fs::directory_iterator(staging_dir, ec); !ec && it != fs::directory_iterator();
         it.increment(ec)) {
      std::error_code ignored;
      fs::remove(it->path(), ignored);
    }
    if (ec) return Internal("list " + staging_dir.string() + ": " + ec.message());

    std::unordered_set<std::string> referenced;
    {
      std::lock_guard lock(write_mu);
      ASSIGN_OR_RETURN(
          Statement stmt,
          write_db->Prepare("SELECT blob FROM objects UNION ALL SELECT blob FROM parts"));
      while (true) {
        ASSIGN_OR_RETURN(bool row, stmt.Step());
        if (!row) break;
        referenced.insert(stmt.Text(0));
      }
    }
    for (auto it = fs::directory_iterator(blobs_dir, ec); !ec && it != fs::directory_iterator();
         it.increment(ec)) {
      if (referenced.contains(it->path().filename().string())) continue;
      std::error_code ignored;
      fs::remove(it->path(), ignored);
    }
    if (ec) return Internal("list " + blobs_dir.string() + ": " + ec.message());
    return Status::Ok();
  }
};

// ---------------------------------------------------------------------------------------------
// Writers and readers.

// Called at Commit with the published blob's name, its size and raw MD5; owns the blob from
// then on (removes it on failure).
using PublishFn = std::function<Result<ObjectInfo>(const std::string& blob, std::uint64_t size,
                                                   const std::string& md5_raw)>;

class LocalObjectWriter final : public ObjectWriter {
 public:
  LocalObjectWriter(std::shared_ptr<Core> core, std::unique_ptr<StagingFile> file,
                    std::optional<std::string> expected_md5, PublishFn publish)
      : core_(std::move(core)),
        file_(std::move(file)),
        expected_md5_(std::move(expected_md5)),
        publish_(std::move(publish)) {}

  Status Append(std::string_view data) override {
    if (file_ == nullptr) return FailedPrecondition("writer is already committed or failed");
    md5_.Update(data);
    size_ += data.size();
    if (buffer_.size() + data.size() <= kWriteBufferBytes) {
      buffer_.append(data);
      return Status::Ok();
    }
    Status status = Flush();
    if (status.ok()) {
      if (data.size() >= kWriteBufferBytes) {
        status = file_->Write(data);
      } else {
        buffer_.append(data);
      }
    }
    if (!status.ok()) file_.reset();
    return status;
  }

  Result<ObjectInfo> Commit() override {
    if (file_ == nullptr) return FailedPrecondition("writer is already committed or failed");
    // The staging file is removed on every path out of here except a successful Publish.
    std::unique_ptr<StagingFile> file = std::move(file_);
    RETURN_IF_ERROR(Flush(file.get()));
    std::string md5 = md5_.FinishRaw();
    if (expected_md5_.has_value() && *expected_md5_ != md5) {
      return InvalidArgument("the Content-MD5 does not match the MD5 of the body received",
                             "BadDigest");
    }
    ASSIGN_OR_RETURN(std::string blob, file->Publish(core_->blobs_dir));
    return publish_(blob, size_, md5);
  }

 private:
  Status Flush() { return Flush(file_.get()); }
  Status Flush(StagingFile* file) {
    if (buffer_.empty()) return Status::Ok();
    Status status = file->Write(buffer_);
    buffer_.clear();
    return status;
  }

  std::shared_ptr<Core> core_;
  std::unique_ptr<StagingFile> file_;  // null once committed or failed
  std::optional<std::string> expected_md5_;
  PublishFn publish_;
  Md5Hasher md5_;
  std::uint64_t size_ = 0;
  std::string buffer_;
};

class LocalObjectReader final : public ObjectReader {
 public:
  LocalObjectReader(UniqueFd fd, ObjectInfo info) : fd_(std::move(fd)), info_(std::move(info)) {}

  const ObjectInfo& info() const override { return info_; }

  int DupFd() const override { return ::fcntl(fd_.get(), F_DUPFD_CLOEXEC, 0); }

  Status ReadAt(std::uint64_t offset, std::size_t n, std::string* out) override {
    out->clear();
    if (offset >= info_.size) return Status::Ok();
    std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(n, info_.size - offset));
    out->resize(want);
    std::size_t got = 0;
    while (got < want) {
      ssize_t r =
          ::pread(fd_.get(), out->data() + got, want - got, static_cast<off_t>(offset + got));
      if (r < 0) {
        if (errno == EINTR) continue;
        out->clear();
        return ErrnoStatus("read blob of", info_.key, errno);
      }
      if (r == 0) {
        out->clear();
        return Internal("blob of '" + info_.key + "' is shorter than its index entry");
      }
      got += static_cast<std::size_t>(r);
    }
    return Status::Ok();
  }

  Status CopyTo(const fs::path& dest) override {
    UniqueFd out(::open(dest.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!out.valid()) return ErrnoStatus("create", dest, errno);
    RETURN_IF_ERROR(CopyFdPrefix(fd_.get(), info_.size, out.get(), dest));
    if (out.Close() != 0) return ErrnoStatus("close", dest, errno);
    return Status::Ok();
  }

 private:
  UniqueFd fd_;
  ObjectInfo info_;
};

}  // namespace

// ---------------------------------------------------------------------------------------------

// The ObjectStore over a directory of immutable blobs and a SQLite index (see the header).
//
// Thread safety: thread safe. Mutations serialize on Core::write_mu for their index work only;
// bytes are streamed, fsync'd and renamed before the lock is taken.
class LocalObjectStore final : public ObjectStore {
 public:
  static Result<std::unique_ptr<LocalObjectStore>> Open(const LocalObjectStoreOptions& options);

  Status CreateBucket(std::string_view bucket) override;
  Status DeleteBucket(std::string_view bucket) override;
  Result<BucketInfo> HeadBucket(std::string_view bucket) override;
  Result<std::vector<BucketInfo>> ListBuckets() override;

  Result<std::unique_ptr<ObjectWriter>> OpenForWrite(std::string_view bucket, std::string_view key,
                                                     const PutOptions& options) override;
  Result<std::unique_ptr<ObjectReader>> OpenForRead(std::string_view bucket,
                                                    std::string_view key) override;
  Result<ObjectInfo> Stat(std::string_view bucket, std::string_view key) override;
  Status DeleteObject(std::string_view bucket, std::string_view key) override;
  Result<ObjectInfo> CopyObject(std::string_view src_bucket, std::string_view src_key,
                                std::string_view dst_bucket, std::string_view dst_key,
                                const PutOptions& options, bool replace_metadata) override;
  Result<ListResult> List(std::string_view bucket, const ListOptions& options) override;

  Result<std::string> CreateMultipartUpload(std::string_view bucket, std::string_view key,
                                            const PutOptions& options) override;
  Result<std::unique_ptr<ObjectWriter>> OpenPartForWrite(
      std::string_view bucket, std::string_view key, std::string_view upload_id, int part_number,
      std::optional<std::string> expected_md5) override;
  Result<ObjectInfo> CompleteMultipartUpload(std::string_view bucket, std::string_view key,
                                             std::string_view upload_id,
                                             const std::vector<CompletedPart>& parts) override;
  Status AbortMultipartUpload(std::string_view bucket, std::string_view key,
                              std::string_view upload_id) override;
  Result<std::vector<PartInfo>> ListParts(std::string_view bucket, std::string_view key,
                                          std::string_view upload_id) override;
  Result<std::vector<UploadInfo>> ListMultipartUploads(std::string_view bucket) override;

 private:
  explicit LocalObjectStore(std::shared_ptr<Core> core) : core_(std::move(core)) {}

  struct OpenedObject {
    ObjectRow row;
    UniqueFd fd;
  };
  // Looks the object up and opens its blob, so that the caller holds exactly the bytes the row
  // described even if the key is overwritten right after.
  Result<OpenedObject> OpenObject(std::string_view bucket, std::string_view key);

  std::shared_ptr<Core> core_;
};

Result<std::unique_ptr<LocalObjectStore>> LocalObjectStore::Open(
    const LocalObjectStoreOptions& options) {
  if (options.root.empty()) return InvalidArgument("LocalObjectStoreOptions.root must be set");
  auto core = std::make_shared<Core>();
  core->root = options.root;
  core->blobs_dir = options.root / "blobs";
  core->staging_dir = options.root / "staging";
  for (const fs::path& dir : {core->root, core->blobs_dir, core->staging_dir}) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) return Internal("create directory " + dir.string() + ": " + ec.message());
  }

  // Open() deletes files it does not know about; a second process on the same directory would
  // see the first one's in-flight writes as debris.
  fs::path lock_path = core->root / "LOCK";
  core->lock_fd = UniqueFd(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (!core->lock_fd.valid()) return ErrnoStatus("open", lock_path, errno);
  if (::flock(core->lock_fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      return FailedPrecondition("object store " + core->root.string() +
                                " is already open (LOCK is held)");
    }
    return ErrnoStatus("lock", lock_path, errno);
  }

  fs::path db_path = core->root / "index.db";
  ASSIGN_OR_RETURN(core->write_db, Database::Open(db_path));
  RETURN_IF_ERROR(Migrate(*core->write_db));
  ASSIGN_OR_RETURN(core->read_db, Database::Open(db_path));
  RETURN_IF_ERROR(core->RemoveLeftovers());
  return std::unique_ptr<LocalObjectStore>(new LocalObjectStore(std::move(core)));
}

Status LocalObjectStore::CreateBucket(std::string_view bucket) {
  RETURN_IF_ERROR(ValidateBucketName(bucket));
  std::lock_guard lock(core_->write_mu);
  Database& db = *core_->write_db;
  ASSIGN_OR_RETURN(Statement stmt, db.Prepare("INSERT INTO buckets (name, created_millis) "
                                              "VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING"));
  RETURN_IF_ERROR(stmt.BindText(1, bucket).BindInt(2, NowMillis()).Run());
  if (db.Changes() == 0) {
    return AlreadyExists("bucket '" + std::string(bucket) + "' already exists",
                         "BucketAlreadyOwnedByYou");
  }
  return Status::Ok();
}

Status LocalObjectStore::DeleteBucket(std::string_view bucket) {
  std::lock_guard lock(core_->write_mu);
  Database& db = *core_->write_db;
  Transaction txn(db);
  RETURN_IF_ERROR(txn.Begin());
  RETURN_IF_ERROR(RequireBucket(db, bucket));
  {
    ASSIGN_OR_RETURN(Statement stmt,
                     db.Prepare("SELECT EXISTS (SELECT 1 FROM objects WHERE bucket = ?1) OR "
                                "EXISTS (SELECT 1 FROM uploads WHERE bucket = ?1)"));
    ASSIGN_OR_RETURN(bool row, stmt.BindText(1, bucket).Step());
    if (row && stmt.Int(0) != 0) {
      return FailedPrecondition(
          "bucket '" + std::string(bucket) + "' is not empty (objects or multipart uploads remain)",
          "BucketNotEmpty");
    }
  }
  ASSIGN_OR_RETURN(Statement stmt, db.Prepare("DELETE FROM buckets WHERE name = ?"));
  RETURN_IF_ERROR(stmt.BindText(1, bucket).Run());
  return txn.Commit();
}

Result<BucketInfo> LocalObjectStore::HeadBucket(std::string_view bucket) {
  std::lock_guard lock(core_->read_mu);
  ASSIGN_OR_RETURN(Statement stmt,
                   core_->read_db->Prepare("SELECT created_millis FROM buckets WHERE name = ?"));
  ASSIGN_OR_RETURN(bool found, stmt.BindText(1, bucket).Step());
  if (!found)
    return NotFound("bucket '" + std::string(bucket) + "' does not exist", "NoSuchBucket");
  return BucketInfo{std::string(bucket), stmt.Int(0)};
}

Result<std::vector<BucketInfo>> LocalObjectStore::ListBuckets() {
  std::lock_guard lock(core_->read_mu);
  ASSIGN_OR_RETURN(Statement stmt, core_->read_db->Prepare(
                                       "SELECT name, created_millis FROM buckets ORDER BY name"));
  std::vector<BucketInfo> buckets;
  while (true) {
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    buckets.push_back(BucketInfo{stmt.Text(0), stmt.Int(1)});
  }
  return buckets;
}

Result<std::unique_ptr<ObjectWriter>> LocalObjectStore::OpenForWrite(std::string_view bucket,
                                                                     std::string_view key,
                                                                     const PutOptions& options) {
  RETURN_IF_ERROR(ValidateKey(key));
  {
    // Fail early rather than after the body has been streamed; Commit checks again.
    std::lock_guard lock(core_->read_mu);
    RETURN_IF_ERROR(RequireBucket(*core_->read_db, bucket));
  }
  ASSIGN_OR_RETURN(std::unique_ptr<StagingFile> file, StagingFile::Create(core_->staging_dir));
  PublishFn publish = [core = core_, bucket = std::string(bucket), key = std::string(key),
                       content_type = options.content_type, metadata = options.user_metadata](
                          const std::string& blob, std::uint64_t size, const std::string& md5_raw) {
    ObjectInfo info;
    info.key = key;
    info.size = size;
    info.etag = HexEncode(md5_raw);
    info.last_modified_millis = NowMillis();
    info.content_type = content_type;
    info.user_metadata = metadata;
    return core->PublishObject(bucket, info, blob);
  };
  return std::unique_ptr<ObjectWriter>(std::make_unique<LocalObjectWriter>(
      core_, std::move(file), options.expected_md5, std::move(publish)));
}

Result<LocalObjectStore::OpenedObject> LocalObjectStore::OpenObject(std::string_view bucket,
                                                                    std::string_view key) {
  std::string missing_blob;
  // Lookups see a committed snapshot; an overwrite can commit and unlink that blob before the
  // open below. The row then has changed, so look again. The same blob missing twice is damage.
  while (true) {
    ObjectRow row;
    {
      std::lock_guard lock(core_->read_mu);
      ASSIGN_OR_RETURN(row, LookupObject(*core_->read_db, bucket, key));
    }
    UniqueFd fd(::open(core_->BlobPath(row.blob).c_str(), O_RDONLY | O_CLOEXEC));
    int err = errno;
    if (fd.valid()) return OpenedObject{std::move(row), std::move(fd)};
    if (err != ENOENT || row.blob == missing_blob) {
      return ErrnoStatus("open blob of key '" + std::string(key) + "':", core_->BlobPath(row.blob),
                         err);
    }
    missing_blob = row.blob;
  }
}

Result<std::unique_ptr<ObjectReader>> LocalObjectStore::OpenForRead(std::string_view bucket,
                                                                    std::string_view key) {
  ASSIGN_OR_RETURN(OpenedObject opened, OpenObject(bucket, key));
  return std::unique_ptr<ObjectReader>(
      std::make_unique<LocalObjectReader>(std::move(opened.fd), std::move(opened.row.info)));
}

Result<ObjectInfo> LocalObjectStore::Stat(std::string_view bucket, std::string_view key) {
  std::lock_guard lock(core_->read_mu);
  ASSIGN_OR_RETURN(ObjectRow row, LookupObject(*core_->read_db, bucket, key));
  return row.info;
}

Status LocalObjectStore::DeleteObject(std::string_view bucket, std::string_view key) {
  std::vector<std::string> garbage;
  {
    std::lock_guard lock(core_->write_mu);
    Database& db = *core_->write_db;
    Transaction txn(db);
    RETURN_IF_ERROR(txn.Begin());
    RETURN_IF_ERROR(RequireBucket(db, bucket));
    {
      ASSIGN_OR_RETURN(Statement stmt,
                       db.Prepare("SELECT blob FROM objects WHERE bucket = ?1 AND key = ?2"));
      ASSIGN_OR_RETURN(bool found, stmt.BindText(1, bucket).BindBlob(2, key).Step());
      if (!found) return Status::Ok();
      garbage.push_back(stmt.Text(0));
    }
    ASSIGN_OR_RETURN(Statement stmt,
                     db.Prepare("DELETE FROM objects WHERE bucket = ?1 AND key = ?2"));
    RETURN_IF_ERROR(stmt.BindText(1, bucket).BindBlob(2, key).Run());
    RETURN_IF_ERROR(txn.Commit());
  }
  core_->UnlinkBlobs(garbage);
  return Status::Ok();
}

Result<ObjectInfo> LocalObjectStore::CopyObject(std::string_view src_bucket,
                                                std::string_view src_key,
                                                std::string_view dst_bucket,
                                                std::string_view dst_key, const PutOptions& options,
                                                bool replace_metadata) {
  RETURN_IF_ERROR(ValidateKey(dst_key));
  ASSIGN_OR_RETURN(OpenedObject src, OpenObject(src_bucket, src_key));
  {
    std::lock_guard lock(core_->read_mu);
    RETURN_IF_ERROR(RequireBucket(*core_->read_db, dst_bucket));
  }

  // Blobs never change, so a second name for the same file is a complete, instant copy.
  std::string blob = NewUuid();
  if (::link(core_->BlobPath(src.row.blob).c_str(), core_->BlobPath(blob).c_str()) == 0) {
    Status synced = FsyncPath(core_->blobs_dir);
    if (!synced.ok()) {
      core_->UnlinkBlob(blob);
      return synced;
    }
  } else {
    // The source was replaced since we opened it (its name is gone), or the filesystem refuses
    // another link (EMLINK, no hard links): copy the bytes we hold open.
    ASSIGN_OR_RETURN(std::unique_ptr<StagingFile> file, StagingFile::Create(core_->staging_dir));
    RETURN_IF_ERROR(file->CopyFrom(src.fd.get(), src.row.info.size));
    ASSIGN_OR_RETURN(blob, file->Publish(core_->blobs_dir));
  }

  ObjectInfo info = src.row.info;
  info.key = std::string(dst_key);
  info.last_modified_millis = NowMillis();
  if (replace_metadata) {
    info.content_type = options.content_type;
    info.user_metadata = options.user_metadata;
  }
  return core_->PublishObject(std::string(dst_bucket), info, blob);
}

Result<ListResult> LocalObjectStore::List(std::string_view bucket, const ListOptions& options) {
  ListResult result;
  std::lock_guard lock(core_->read_mu);
  Database& db = *core_->read_db;
  RETURN_IF_ERROR(RequireBucket(db, bucket));
  if (options.max_keys <= 0) return result;

  const std::string& prefix = options.prefix;
  const std::string& delimiter = options.delimiter;
  const std::string& start_after = options.start_after;
  const std::size_t max_items = static_cast<std::size_t>(options.max_keys);
  const std::optional<std::string> upper = PrefixSuccessor(prefix);
  // Keys in [lower, upper). "key > start_after" is "key >= start_after + '\0'": the next string
  // in byte order.
  std::string lower = prefix;
  if (!start_after.empty()) lower = std::max(lower, start_after + std::string(1, '\0'));

  std::size_t count = 0;
  auto full = [&] {
    if (count < max_items) return false;
    result.truncated = true;
    return true;
  };
  // One range query per run of plain keys; after a common prefix, seek past all of its keys
  // with a fresh query instead of stepping through them.
  bool done = false;
  while (!done) {
    const std::int64_t limit = static_cast<std::int64_t>(max_items - count + 1);
    ASSIGN_OR_RETURN(
        Statement stmt,
        db.Prepare(upper.has_value()
                       ? "SELECT key, size, etag, last_modified, content_type, user_metadata "
                         "FROM objects WHERE bucket = ?1 AND key >= ?2 AND key < ?4 "
                         "ORDER BY key LIMIT ?3"
                       : "SELECT key, size, etag, last_modified, content_type, user_metadata "
                         "FROM objects WHERE bucket = ?1 AND key >= ?2 ORDER BY key LIMIT ?3"));
    stmt.BindText(1, bucket).BindBlob(2, lower).BindInt(3, limit);
    if (upper.has_value()) stmt.BindBlob(4, *upper);
    bool seek = false;
    while (!seek) {
      ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) {
        done = true;
        break;
      }
      std::string key = stmt.Blob(0);
      std::size_t at = delimiter.empty() ? std::string::npos : key.find(delimiter, prefix.size());
      if (at != std::string::npos) {
        std::string common = key.substr(0, at + delimiter.size());
        // A common prefix at or before start_after was returned on an earlier page.
        if (common > start_after) {
          if (full()) {
            done = true;
            break;
          }
          result.common_prefixes.push_back(common);
          result.last_returned = common;
          ++count;
        }
        std::optional<std::string> next = PrefixSuccessor(common);
        if (!next.has_value()) {
          done = true;
          break;
        }
        lower = std::move(*next);
        seek = true;
        continue;
      }
      if (full()) {
        done = true;
        break;
      }
      ObjectInfo info;
      info.key = std::move(key);
      info.size = static_cast<std::uint64_t>(stmt.Int(1));
      info.etag = stmt.Text(2);
      info.last_modified_millis = stmt.Int(3);
      info.content_type = stmt.Text(4);
      info.user_metadata = DecodeMetadata(stmt.Text(5));
      result.last_returned = info.key;
      result.objects.push_back(std::move(info));
      ++count;
    }
  }
  return result;
}

Result<std::string> LocalObjectStore::CreateMultipartUpload(std::string_view bucket,
                                                            std::string_view key,
                                                            const PutOptions& options) {
  RETURN_IF_ERROR(ValidateKey(key));
  std::string upload_id = NewUuid();
  std::lock_guard lock(core_->write_mu);
  Database& db = *core_->write_db;
  RETURN_IF_ERROR(RequireBucket(db, bucket));
  ASSIGN_OR_RETURN(Statement stmt,
                   db.Prepare("INSERT INTO uploads (upload_id, bucket, key, content_type, "
                              "user_metadata, initiated_millis) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"));
  RETURN_IF_ERROR(stmt.BindText(1, upload_id)
                      .BindText(2, bucket)
                      .BindBlob(3, key)
                      .BindText(4, options.content_type)
                      .BindText(5, EncodeMetadata(options.user_metadata))
                      .BindInt(6, NowMillis())
                      .Run());
  return upload_id;
}

Result<std::unique_ptr<ObjectWriter>> LocalObjectStore::OpenPartForWrite(
    std::string_view bucket, std::string_view key, std::string_view upload_id, int part_number,
    std::optional<std::string> expected_md5) {
  if (part_number < 1 || part_number > kMaxPartNumber) {
    return InvalidArgument("part number " + std::to_string(part_number) + " is outside 1..10000");
  }
  {
    std::lock_guard lock(core_->read_mu);
    RETURN_IF_ERROR(RequireUpload(*core_->read_db, bucket, key, upload_id).status());
  }
  ASSIGN_OR_RETURN(std::unique_ptr<StagingFile> file, StagingFile::Create(core_->staging_dir));
  PublishFn publish = [core = core_, bucket = std::string(bucket), key = std::string(key),
                       upload_id = std::string(upload_id), part_number](
                          const std::string& blob, std::uint64_t size, const std::string& md5_raw) {
    ObjectInfo info;
    info.key = key;
    info.size = size;
    info.etag = HexEncode(md5_raw);
    info.last_modified_millis = NowMillis();
    return core->PublishPart(bucket, key, upload_id, part_number, info, blob);
  };
  return std::unique_ptr<ObjectWriter>(std::make_unique<LocalObjectWriter>(
      core_, std::move(file), std::move(expected_md5), std::move(publish)));
}

namespace {
// Appends the blob file of every part of `upload_id` to `out`.
Status CollectPartBlobs(Database& db, std::string_view upload_id, std::vector<std::string>* out) {
  ASSIGN_OR_RETURN(Statement stmt, db.Prepare("SELECT blob FROM parts WHERE upload_id = ?"));
  stmt.BindText(1, upload_id);
  while (true) {
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return Status::Ok();
    out->push_back(stmt.Text(0));
  }
}
}  // namespace

Result<ObjectInfo> LocalObjectStore::CompleteMultipartUpload(
    std::string_view bucket, std::string_view key, std::string_view upload_id,
    const std::vector<CompletedPart>& parts) {
  if (parts.empty()) {
    return InvalidArgument("CompleteMultipartUpload must name at least one part", "InvalidPart");
  }
  for (std::size_t i = 1; i < parts.size(); ++i) {
    if (parts[i].part_number <= parts[i - 1].part_number) {
      return InvalidArgument("parts must be listed in ascending order of part number (" +
                                 std::to_string(parts[i].part_number) + " follows " +
                                 std::to_string(parts[i - 1].part_number) + ")",
                             "InvalidPartOrder");
    }
  }

  struct Source {
    UniqueFd fd;
    std::uint64_t size = 0;
    std::string md5_raw;
  };
  std::vector<Source> sources;
  UploadRow upload;
  {
    // Validate and open the parts under the write lock: committed rows' blobs are only
    // unlinked after a later commit, which cannot happen while we hold it.
    std::lock_guard lock(core_->write_mu);
    Database& db = *core_->write_db;
    ASSIGN_OR_RETURN(upload, RequireUpload(db, bucket, key, upload_id));
    struct StoredPart {
      std::string blob;
      std::uint64_t size;
      std::string etag;
    };
    std::unordered_map<int, StoredPart> stored;
    {
      ASSIGN_OR_RETURN(Statement stmt, db.Prepare("SELECT part_number, blob, size, etag FROM "
                                                  "parts WHERE upload_id = ?"));
      stmt.BindText(1, upload_id);
      while (true) {
        ASSIGN_OR_RETURN(bool row, stmt.Step());
        if (!row) break;
        stored.emplace(
            static_cast<int>(stmt.Int(0)),
            StoredPart{stmt.Text(1), static_cast<std::uint64_t>(stmt.Int(2)), stmt.Text(3)});
      }
    }
    // Every named part must exist with the named ETag before sizes are judged: a missing part
    // is InvalidPart even when an earlier one is also too small.
    std::vector<const StoredPart*> chosen;
    for (const CompletedPart& part : parts) {
      const std::string number = std::to_string(part.part_number);
      auto it = stored.find(part.part_number);
      if (it == stored.end()) {
        return InvalidArgument("part " + number + " was not uploaded", "InvalidPart");
      }
      if (NormalizeEtag(part.etag) != it->second.etag) {
        return InvalidArgument("part " + number + ": ETag '" + part.etag +
                                   "' does not match the uploaded part's '" + it->second.etag + "'",
                               "InvalidPart");
      }
      chosen.push_back(&it->second);
    }
    for (std::size_t i = 0; i + 1 < chosen.size(); ++i) {
      if (chosen[i]->size < kMinPartBytes) {
        return InvalidArgument("part " + std::to_string(parts[i].part_number) + " is " +
                                   std::to_string(chosen[i]->size) +
                                   " bytes; every part but the last must be at least 5 MiB",
                               "EntityTooSmall");
      }
    }
    for (const StoredPart* part : chosen) {
      fs::path path = core_->BlobPath(part->blob);
      UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
      if (!fd.valid()) return ErrnoStatus("open part blob", path, errno);
      sources.push_back(Source{std::move(fd), part->size, HexDecode(part->etag)});
    }
  }

  // The long part, outside the lock: concatenate into one new durable blob.
  ASSIGN_OR_RETURN(std::unique_ptr<StagingFile> file, StagingFile::Create(core_->staging_dir));
  Md5Hasher etag_md5;
  std::uint64_t total = 0;
  for (const Source& source : sources) {
    RETURN_IF_ERROR(file->CopyFrom(source.fd.get(), source.size));
    etag_md5.Update(source.md5_raw);
    total += source.size;
  }
  sources.clear();
  ASSIGN_OR_RETURN(std::string blob, file->Publish(core_->blobs_dir));

  ObjectInfo info;
  info.key = std::string(key);
  info.size = total;
  info.etag = HexEncode(etag_md5.FinishRaw()) + "-" + std::to_string(parts.size());
  info.last_modified_millis = NowMillis();
  info.content_type = upload.content_type;
  info.user_metadata = DecodeMetadata(upload.user_metadata);

  // Garbage: the replaced object's blob and every part's blob.
  RETURN_IF_ERROR(core_->PublishBlob(blob, [&](Database& db, std::vector<std::string>* garbage) {
    // Aborted or completed by someone else meanwhile. (An existing upload implies its bucket.)
    RETURN_IF_ERROR(RequireUpload(db, bucket, key, upload_id).status());
    RETURN_IF_ERROR(CollectPartBlobs(db, upload_id, garbage));
    RETURN_IF_ERROR(UpsertObjectRow(db, bucket, info, blob, garbage));
    {
      ASSIGN_OR_RETURN(Statement stmt, db.Prepare("DELETE FROM parts WHERE upload_id = ?"));
      RETURN_IF_ERROR(stmt.BindText(1, upload_id).Run());
    }
    ASSIGN_OR_RETURN(Statement stmt, db.Prepare("DELETE FROM uploads WHERE upload_id = ?"));
    return stmt.BindText(1, upload_id).Run();
  }));
  return info;
}

Status LocalObjectStore::AbortMultipartUpload(std::string_view bucket, std::string_view key,
                                              std::string_view upload_id) {
  std::vector<std::string> garbage;
  {
    std::lock_guard lock(core_->write_mu);
    Database& db = *core_->write_db;
    Transaction txn(db);
    RETURN_IF_ERROR(txn.Begin());
    RETURN_IF_ERROR(RequireUpload(db, bucket, key, upload_id).status());
    RETURN_IF_ERROR(CollectPartBlobs(db, upload_id, &garbage));
    {
      ASSIGN_OR_RETURN(Statement stmt, db.Prepare("DELETE FROM parts WHERE upload_id = ?"));
      RETURN_IF_ERROR(stmt.BindText(1, upload_id).Run());
    }
    ASSIGN_OR_RETURN(Statement stmt, db.Prepare("DELETE FROM uploads WHERE upload_id = ?"));
    RETURN_IF_ERROR(stmt.BindText(1, upload_id).Run());
    RETURN_IF_ERROR(txn.Commit());
  }
  core_->UnlinkBlobs(garbage);
  return Status::Ok();
}

Result<std::vector<PartInfo>> LocalObjectStore::ListParts(std::string_view bucket,
                                                          std::string_view key,
                                                          std::string_view upload_id) {
  std::lock_guard lock(core_->read_mu);
  Database& db = *core_->read_db;
  RETURN_IF_ERROR(RequireUpload(db, bucket, key, upload_id).status());
  ASSIGN_OR_RETURN(Statement stmt,
                   db.Prepare("SELECT part_number, size, etag, last_modified FROM parts "
                              "WHERE upload_id = ? ORDER BY part_number"));
  stmt.BindText(1, upload_id);
  std::vector<PartInfo> parts;
  while (true) {
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    parts.push_back(PartInfo{static_cast<int>(stmt.Int(0)), static_cast<std::uint64_t>(stmt.Int(1)),
                             stmt.Text(2), stmt.Int(3)});
  }
  return parts;
}

Result<std::vector<UploadInfo>> LocalObjectStore::ListMultipartUploads(std::string_view bucket) {
  std::lock_guard lock(core_->read_mu);
  Database& db = *core_->read_db;
  RETURN_IF_ERROR(RequireBucket(db, bucket));
  ASSIGN_OR_RETURN(Statement stmt,
                   db.Prepare("SELECT upload_id, key, initiated_millis FROM uploads "
                              "WHERE bucket = ? ORDER BY key, initiated_millis, upload_id"));
  stmt.BindText(1, bucket);
  std::vector<UploadInfo> uploads;
  while (true) {
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    uploads.push_back(UploadInfo{stmt.Text(0), std::string(bucket), stmt.Blob(1), stmt.Int(2)});
  }
  return uploads;
}

Result<std::unique_ptr<ObjectStore>> OpenLocalObjectStore(const LocalObjectStoreOptions& options) {
  ASSIGN_OR_RETURN(std::unique_ptr<LocalObjectStore> store, LocalObjectStore::Open(options));
  return std::unique_ptr<ObjectStore>(std::move(store));
}

}  // namespace hearth::storage
