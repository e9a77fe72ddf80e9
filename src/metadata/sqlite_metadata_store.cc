#include "metadata/sqlite_metadata_store.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <mutex>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "common/clock.h"
#include "metadata/sqlite_db.h"

namespace hearth::metadata {
namespace {

// The schema, one migration per entry; entry i brings a database from version i to i+1. Never
// edit a released entry: append a new one. The SQL is kept to what PostgreSQL also accepts
// (TEXT, BIGINT, DOUBLE PRECISION, composite keys, ON CONFLICT DO NOTHING) so a PostgreSQL
// store can replay the same list. Sequence numbers are assigned by the store inside the write
// transaction rather than by SQLite's rowid, which PostgreSQL has no twin of.
constexpr std::string_view kMigration1 = R"sql(
CREATE TABLE resources (
  kind TEXT NOT NULL,
  name TEXT NOT NULL,
  arn TEXT NOT NULL,
  status TEXT NOT NULL,
  created_millis BIGINT NOT NULL,
  modified_millis BIGINT NOT NULL,
  doc TEXT NOT NULL,
  internal TEXT NOT NULL,
  version BIGINT NOT NULL,
  PRIMARY KEY (kind, name)
);
CREATE INDEX resources_by_creation ON resources (kind, created_millis, name);
CREATE TABLE resource_transitions (
  kind TEXT NOT NULL,
  name TEXT NOT NULL,
  seq BIGINT NOT NULL,
  status TEXT NOT NULL,
  secondary_status TEXT NOT NULL,
  at_millis BIGINT NOT NULL,
  message TEXT NOT NULL,
  PRIMARY KEY (kind, name, seq),
  FOREIGN KEY (kind, name) REFERENCES resources (kind, name)
);
CREATE TABLE log_groups (
  group_name TEXT NOT NULL PRIMARY KEY,
  creation_millis BIGINT NOT NULL,
  last_event_id BIGINT NOT NULL,
  stored_bytes BIGINT NOT NULL
);
CREATE TABLE log_streams (
  group_name TEXT NOT NULL,
  stream_name TEXT NOT NULL,
  creation_millis BIGINT NOT NULL,
  first_event_millis BIGINT,
  last_event_millis BIGINT,
  last_ingestion_millis BIGINT NOT NULL,
  last_sequence BIGINT NOT NULL,
  stored_bytes BIGINT NOT NULL,
  PRIMARY KEY (group_name, stream_name),
  FOREIGN KEY (group_name) REFERENCES log_groups (group_name)
);
CREATE TABLE log_events (
  group_name TEXT NOT NULL,
  stream_name TEXT NOT NULL,
  sequence BIGINT NOT NULL,
  event_id BIGINT NOT NULL,
  timestamp_millis BIGINT NOT NULL,
  ingestion_millis BIGINT NOT NULL,
  message TEXT NOT NULL,
  PRIMARY KEY (group_name, stream_name, sequence),
  UNIQUE (group_name, event_id),
  FOREIGN KEY (group_name, stream_name) REFERENCES log_streams (group_name, stream_name)
);
CREATE INDEX log_events_by_time ON log_events (group_name, timestamp_millis, event_id);
CREATE TABLE metric_points (
  kind TEXT NOT NULL,
  name TEXT NOT NULL,
  seq BIGINT NOT NULL,
  metric TEXT NOT NULL,
  timestamp_millis BIGINT NOT NULL,
  value DOUBLE PRECISION,
  PRIMARY KEY (kind, name, seq)
);
)sql";

// Where each stream's ingester has read its source up to (LogStore::IngestFromSource).
constexpr std::string_view kMigration2 = R"sql(
ALTER TABLE log_streams ADD COLUMN source_position BIGINT NOT NULL DEFAULT 0;
)sql";

const std::vector<std::string_view>& Migrations() {
  static const std::vector<std::string_view> kMigrations = {kMigration1, kMigration2};
  return kMigrations;
}

Result<std::unique_ptr<SqliteDb>> OpenAndMigrate(const SqliteOptions& options,
                                                 std::string synchronous) {
  ASSIGN_OR_RETURN(auto db,
                   SqliteDb::Open({.path = options.path, .synchronous = std::move(synchronous)}));
  RETURN_IF_ERROR(db->Migrate(Migrations()));
  return db;
}

// Invalid UTF-8 is replaced rather than thrown on: a document must always be storable.
std::string DumpJson(const nlohmann::json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Result<nlohmann::json> ParseStoredJson(const std::string& text, std::string_view what) {
  nlohmann::json value = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) return Internal("stored " + std::string(what) + " is not valid JSON");
  return value;
}

std::string Describe(std::string_view kind, std::string_view name) {
  return std::string(kind) + " '" + std::string(name) + "'";
}

Status ResourceMissing(std::string_view kind, std::string_view name) {
  return NotFound(Describe(kind, name) + " does not exist");
}

// ---------------------------------------------------------------------------------------------
// MetadataStore

constexpr std::string_view kResourceColumns =
    "kind, name, arn, status, created_millis, modified_millis, doc, internal, version";

Result<Resource> ReadResource(const SqliteStatement& row) {
  Resource r;
  r.kind = row.ColumnText(0);
  r.name = row.ColumnText(1);
  r.arn = row.ColumnText(2);
  r.status = row.ColumnText(3);
  r.created_millis = row.ColumnInt64(4);
  r.modified_millis = row.ColumnInt64(5);
  ASSIGN_OR_RETURN(r.doc, ParseStoredJson(row.ColumnText(6), "doc of " + Describe(r.kind, r.name)));
  ASSIGN_OR_RETURN(r.internal,
                   ParseStoredJson(row.ColumnText(7), "internal of " + Describe(r.kind, r.name)));
  r.version = row.ColumnInt64(8);
  return r;
}

class SqliteMetadataStore final : public MetadataStore {
 public:
  explicit SqliteMetadataStore(std::unique_ptr<SqliteDb> db) : db_(std::move(db)) {}

  Status Create(const Resource& resource, const Transition& first) override {
    RETURN_IF_ERROR(ValidateResource(resource));
    std::lock_guard lock(mu_);
    ASSIGN_OR_RETURN(auto txn, SqliteTransaction::Begin(*db_));
    ASSIGN_OR_RETURN(bool exists, Exists(resource.kind, resource.name));
    if (exists) return AlreadyExists(Describe(resource.kind, resource.name) + " already exists");
    ASSIGN_OR_RETURN(auto insert,
                     db_->Prepare("INSERT INTO resources (" + std::string(kResourceColumns) +
                                  ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1)"));
    RETURN_IF_ERROR(insert.Bind(1, resource.kind)
                        .Bind(2, resource.name)
                        .Bind(3, resource.arn)
                        .Bind(4, resource.status)
                        .Bind(5, resource.created_millis)
                        .Bind(6, resource.modified_millis)
                        .Bind(7, DumpJson(resource.doc))
                        .Bind(8, DumpJson(resource.internal))
                        .Run());
    RETURN_IF_ERROR(AppendTransition(resource.kind, resource.name, first));
    return txn.Commit();
  }

  Result<Resource> Get(std::string_view kind, std::string_view name) override {
    std::lock_guard lock(mu_);
    ASSIGN_OR_RETURN(auto select, db_->Prepare("SELECT " + std::string(kResourceColumns) +
                                               " FROM resources WHERE kind = ? AND name = ?"));
    select.Bind(1, kind).Bind(2, name);
    ASSIGN_OR_RETURN(bool row, select.Step());
    if (!row) return ResourceMissing(kind, name);
    return ReadResource(select);
  }

  Result<std::vector<Resource>> List(std::string_view kind) override {
    std::lock_guard lock(mu_);
    ASSIGN_OR_RETURN(auto select,
                     db_->Prepare("SELECT " + std::string(kResourceColumns) +
                                  " FROM resources WHERE kind = ? ORDER BY created_millis, name"));
    select.Bind(1, kind);
    std::vector<Resource> out;
    while (true) {
      ASSIGN_OR_RETURN(bool row, select.Step());
      if (!row) break;
      ASSIGN_OR_RETURN(auto resource, ReadResource(select));
      out.push_back(std::move(resource));
    }
    return out;
  }

  Result<std::int64_t> Update(const Resource& resource,
                              const std::optional<Transition>& transition) override {
    RETURN_IF_ERROR(ValidateResource(resource));
    std::lock_guard lock(mu_);
    ASSIGN_OR_RETURN(auto txn, SqliteTransaction::Begin(*db_));
    // created_millis is left alone: it is part of the resource's identity, not its state.
    ASSIGN_OR_RETURN(auto update,
                     db_->Prepare("UPDATE resources SET arn = ?, status = ?, modified_millis = ?,"
                                  " doc = ?, internal = ?, version = version + 1"
                                  " WHERE kind = ? AND name = ? AND version = ?"));
    RETURN_IF_ERROR(update.Bind(1, resource.arn)
                        .Bind(2, resource.status)
                        .Bind(3, resource.modified_millis)
                        .Bind(4, DumpJson(resource.doc))
                        .Bind(5, DumpJson(resource.internal))
                        .Bind(6, resource.kind)
                        .Bind(7, resource.name)
                        .Bind(8, resource.version)
                        .Run());
    if (db_->Changes() == 0) {
      ASSIGN_OR_RETURN(bool exists, Exists(resource.kind, resource.name));
      if (!exists) return ResourceMissing(resource.kind, resource.name);
      return FailedPrecondition(Describe(resource.kind, resource.name) +
                                    " was modified since version " +
                                    std::to_string(resource.version) + " was read",
                                "VersionConflict");
    }
    if (transition) RETURN_IF_ERROR(AppendTransition(resource.kind, resource.name, *transition));
    RETURN_IF_ERROR(txn.Commit());
    return resource.version + 1;
  }

  Status Delete(std::string_view kind, std::string_view name) override {
    std::lock_guard lock(mu_);
    ASSIGN_OR_RETURN(auto txn, SqliteTransaction::Begin(*db_));
    // History first: its rows reference the resource.
    ASSIGN_OR_RETURN(auto history,
                     db_->Prepare("DELETE FROM resource_transitions WHERE kind = ? AND name = ?"));
    RETURN_IF_ERROR(history.Bind(1, kind).Bind(2, name).Run());
    ASSIGN_OR_RETURN(auto record,
                     db_->Prepare("DELETE FROM resources WHERE kind = ? AND name = ?"));
    RETURN_IF_ERROR(record.Bind(1, kind).Bind(2, name).Run());
    if (db_->Changes() == 0) return ResourceMissing(kind, name);
    return txn.Commit();
  }

  Result<std::vector<Transition>> History(std::string_view kind, std::string_view name) override {
    std::lock_guard lock(mu_);
    ASSIGN_OR_RETURN(bool exists, Exists(kind, name));
    if (!exists) return ResourceMissing(kind, name);
    ASSIGN_OR_RETURN(auto select,
                     db_->Prepare("SELECT status, secondary_status, at_millis, message"
                                  " FROM resource_transitions WHERE kind = ? AND name = ?"
                                  " ORDER BY seq"));
    select.Bind(1, kind).Bind(2, name);
    std::vector<Transition> out;
    while (true) {
      ASSIGN_OR_RETURN(bool row, select.Step());
      if (!row) break;
      out.push_back(Transition{.status = select.ColumnText(0),
                               .secondary_status = select.ColumnText(1),
                               .at_millis = select.ColumnInt64(2),
                               .message = select.ColumnText(3)});
    }
    return out;
  }

 private:
  static Status ValidateResource(const Resource& resource) {
    if (resource.kind.empty()) return InvalidArgument("resource kind must not be empty");
    if (resource.name.empty()) return InvalidArgument("resource name must not be empty");
    if (!resource.doc.is_object()) return InvalidArgument("resource doc must be a JSON object");
    if (!resource.internal.is_object()) {
      return InvalidArgument("resource internal must be a JSON object");
    }
    return Status::Ok();
  }

  // Requires mu_.
  Result<bool> Exists(std::string_view kind, std::string_view name) {
    ASSIGN_OR_RETURN(auto select,
                     db_->Prepare("SELECT 1 FROM resources WHERE kind = ? AND name = ?"));
    select.Bind(1, kind).Bind(2, name);
    return select.Step();
  }

  // Requires mu_ and an open write transaction.
  Status AppendTransition(std::string_view kind, std::string_view name, const Transition& t) {
    ASSIGN_OR_RETURN(auto insert,
                     db_->Prepare("INSERT INTO resource_transitions"
                                  " (kind, name, seq, status, secondary_status, at_millis, message)"
                                  " SELECT ?, ?, COALESCE(MAX(seq), 0) + 1, ?, ?, ?, ?"
                                  " FROM resource_transitions WHERE kind = ? AND name = ?"));
    return insert.Bind(1, kind)
        .Bind(2, name)
        .Bind(3, t.status)
        .Bind(4, t.secondary_status)
        .Bind(5, t.at_millis)
        .Bind(6, t.message)
        .Bind(7, kind)
        .Bind(8, name)
        .Run();
  }

  std::mutex mu_;
  std::unique_ptr<SqliteDb> db_;  // guarded by mu_
};

// ---------------------------------------------------------------------------------------------
// LogStore

// CloudWatch's own wording, since the Logs API passes these messages to clients unchanged.
Status GroupMissing() {
  return NotFound("The specified log group does not exist.", "ResourceNotFoundException");
}
Status StreamMissing() {
  return NotFound("The specified log stream does not exist.", "ResourceNotFoundException");
}

Status ValidateLimit(int limit) {
  if (limit < 1) return InvalidArgument("limit must be at least 1, got " + std::to_string(limit));
  return Status::Ok();
}

class SqliteLogStore final : public LogStore {
 public:
  explicit SqliteLogStore(std::unique_ptr<SqliteDb> db) : db_(std::move(db)) {}

  Status EnsureStream(std::string_view group, std::string_view stream) override {
    RETURN_IF_ERROR(ValidateNames(group, stream));
    std::lock_guard lock(mu_);
    ASSIGN_OR_RETURN(auto txn, SqliteTransaction::Begin(*db_));
    RETURN_IF_ERROR(EnsureStreamLocked(group, stream, NowMillis()));
    return txn.Commit();
  }

  Status Append(std::string_view group, std::string_view stream,
                const std::vector<LogEvent>& events) override {
    RETURN_IF_ERROR(ValidateNames(group, stream));
    std::lock_guard lock(mu_);
    ASSIGN_OR_RETURN(auto txn, SqliteTransaction::Begin(*db_));
    RETURN_IF_ERROR(AppendLocked(group, stream, events));
    return txn.Commit();
  }

  Status IngestFromSource(std::string_view group, std::string_view stream,
                          const std::vector<LogEvent>& events, std::string_view metrics_kind,
                          std::string_view metrics_name, const std::vector<MetricPoint>& metrics,
                          std::int64_t source_position) override {
    RETURN_IF_ERROR(ValidateNames(group, stream));
    if (!metrics.empty() && (metrics_kind.empty() || metrics_name.empty())) {
      return InvalidArgument("metric owner kind and name must not be empty");
    }
    std::lock_guard lock(mu_);
    ASSIGN_OR_RETURN(auto txn, SqliteTransaction::Begin(*db_));
    RETURN_IF_ERROR(AppendLocked(group, stream, events));
    if (!metrics.empty()) RETURN_IF_ERROR(AppendMetricsLocked(metrics_kind, metrics_name, metrics));
    ASSIGN_OR_RETURN(auto update, db_->Prepare("UPDATE log_streams SET source_position = ?"
                                               " WHERE group_name = ? AND stream_name = ?"));
    RETURN_IF_ERROR(update.Bind(1, source_position).Bind(2, group).Bind(3, stream).Run());
    return txn.Commit();
  }

  Result<std::int64_t> SourcePosition(std::string_view group, std::string_view stream) override {
    std::lock_guard lock(mu_);
    ASSIGN_OR_RETURN(auto select, db_->Prepare("SELECT source_position FROM log_streams"
                                               " WHERE group_name = ? AND stream_name = ?"));
    select.Bind(1, group).Bind(2, stream);
    ASSIGN_OR_RETURN(bool found, select.Step());
    return found ? select.ColumnInt64(0) : std::int64_t{0};
  }

 private:
  // Both run inside the caller's transaction, with mu_ held.
  Status AppendLocked(std::string_view group, std::string_view stream,
                      const std::vector<LogEvent>& events) {
    const std::int64_t now = NowMillis();
    RETURN_IF_ERROR(EnsureStreamLocked(group, stream, now));
    if (events.empty()) return Status::Ok();

    ASSIGN_OR_RETURN(auto group_row,
                     db_->Prepare("SELECT last_event_id FROM log_groups WHERE group_name = ?"));
    group_row.Bind(1, group);
    ASSIGN_OR_RETURN(bool found, group_row.Step());
    if (!found) return Internal("log group vanished inside its own transaction");
    std::int64_t event_id = group_row.ColumnInt64(0);

    ASSIGN_OR_RETURN(auto stream_row,
                     db_->Prepare("SELECT last_sequence, first_event_millis, last_event_millis"
                                  " FROM log_streams WHERE group_name = ? AND stream_name = ?"));
    stream_row.Bind(1, group).Bind(2, stream);
    ASSIGN_OR_RETURN(found, stream_row.Step());
    if (!found) return Internal("log stream vanished inside its own transaction");
    std::int64_t sequence = stream_row.ColumnInt64(0);
    std::optional<std::int64_t> first = stream_row.ColumnOptionalInt64(1);
    std::optional<std::int64_t> last = stream_row.ColumnOptionalInt64(2);

    ASSIGN_OR_RETURN(auto insert,
                     db_->Prepare("INSERT INTO log_events (group_name, stream_name, sequence,"
                                  " event_id, timestamp_millis, ingestion_millis, message)"
                                  " VALUES (?, ?, ?, ?, ?, ?, ?)"));
    std::int64_t bytes = 0;
    for (const LogEvent& event : events) {
      insert.Reset();
      RETURN_IF_ERROR(insert.Bind(1, group)
                          .Bind(2, stream)
                          .Bind(3, ++sequence)
                          .Bind(4, ++event_id)
                          .Bind(5, event.timestamp_millis)
                          .Bind(6, now)
                          .Bind(7, event.message)
                          .Run());
      bytes += static_cast<std::int64_t>(event.message.size());
      first = first ? std::min(*first, event.timestamp_millis) : event.timestamp_millis;
      last = last ? std::max(*last, event.timestamp_millis) : event.timestamp_millis;
    }

    ASSIGN_OR_RETURN(auto update_stream,
                     db_->Prepare("UPDATE log_streams SET last_sequence = ?,"
                                  " first_event_millis = ?, last_event_millis = ?,"
                                  " last_ingestion_millis = ?, stored_bytes = stored_bytes + ?"
                                  " WHERE group_name = ? AND stream_name = ?"));
    RETURN_IF_ERROR(update_stream.Bind(1, sequence)
                        .Bind(2, first)
                        .Bind(3, last)
                        .Bind(4, now)
                        .Bind(5, bytes)
                        .Bind(6, group)
                        .Bind(7, stream)
                        .Run());
    ASSIGN_OR_RETURN(auto update_group,
                     db_->Prepare("UPDATE log_groups SET last_event_id = ?,"
                                  " stored_bytes = stored_bytes + ? WHERE group_name = ?"));
    return update_group.Bind(1, event_id).Bind(2, bytes).Bind(3, group).Run();
  }

 public:
  Result<std::vector<LogGroupInfo>> ListGroups(std::string_view prefix) override {
    std::lock_guard lock(mu_);
    // substr/length rather than LIKE: LIKE treats '_' and '%' in names as wildcards and is
    // case-insensitive in SQLite but not in PostgreSQL.
    ASSIGN_OR_RETURN(auto select,
                     db_->Prepare("SELECT group_name, creation_millis, stored_bytes FROM log_groups"
                                  " WHERE substr(group_name, 1, length(?)) = ?"
                                  " ORDER BY group_name"));
    select.Bind(1, prefix).Bind(2, prefix);
    std::vector<LogGroupInfo> out;
    while (true) {
      ASSIGN_OR_RETURN(bool row, select.Step());
      if (!row) break;
      out.push_back(LogGroupInfo{.name = select.ColumnText(0),
                                 .creation_millis = select.ColumnInt64(1),
                                 .stored_bytes = select.ColumnInt64(2)});
    }
    return out;
  }

  Result<std::vector<LogStreamInfo>> ListStreams(std::string_view group,
                                                 std::string_view prefix) override {
    std::lock_guard lock(mu_);
    ASSIGN_OR_RETURN(bool group_exists, GroupExists(group));
    if (!group_exists) return GroupMissing();
    ASSIGN_OR_RETURN(auto select,
                     db_->Prepare("SELECT stream_name, creation_millis, first_event_millis,"
                                  " last_event_millis, last_ingestion_millis, stored_bytes"
                                  " FROM log_streams WHERE group_name = ?"
                                  " AND substr(stream_name, 1, length(?)) = ?"
                                  " ORDER BY stream_name"));
    select.Bind(1, group).Bind(2, prefix).Bind(3, prefix);
    std::vector<LogStreamInfo> out;
    while (true) {
      ASSIGN_OR_RETURN(bool row, select.Step());
      if (!row) break;
      out.push_back(LogStreamInfo{.group = std::string(group),
                                  .name = select.ColumnText(0),
                                  .creation_millis = select.ColumnInt64(1),
                                  .first_event_millis = select.ColumnOptionalInt64(2),
                                  .last_event_millis = select.ColumnOptionalInt64(3),
                                  .last_ingestion_millis = select.ColumnInt64(4),
                                  .stored_bytes = select.ColumnInt64(5)});
    }
    return out;
  }

  Result<std::vector<LogEvent>> GetEvents(std::string_view group, std::string_view stream,
                                          const GetEventsQuery& query) override {
    RETURN_IF_ERROR(ValidateLimit(query.limit));
    std::lock_guard lock(mu_);
    ASSIGN_OR_RETURN(bool group_exists, GroupExists(group));
    if (!group_exists) return GroupMissing();
    ASSIGN_OR_RETURN(auto stream_check, db_->Prepare("SELECT 1 FROM log_streams"
                                                     " WHERE group_name = ? AND stream_name = ?"));
    stream_check.Bind(1, group).Bind(2, stream);
    ASSIGN_OR_RETURN(bool stream_exists, stream_check.Step());
    if (!stream_exists) return StreamMissing();

    // Newest-first selection (then reversed) serves backward paging and the default tail read.
    const bool newest =
        !query.after_sequence && (query.before_sequence.has_value() || !query.from_head);
    std::string sql =
        "SELECT sequence, timestamp_millis, ingestion_millis, message FROM log_events"
        " WHERE group_name = ? AND stream_name = ?";
    if (query.after_sequence) sql += " AND sequence > ?";
    if (query.before_sequence) sql += " AND sequence < ?";
    if (query.start_millis) sql += " AND timestamp_millis >= ?";
    if (query.end_millis) sql += " AND timestamp_millis < ?";
    sql += newest ? " ORDER BY sequence DESC LIMIT ?" : " ORDER BY sequence ASC LIMIT ?";
    ASSIGN_OR_RETURN(auto select, db_->Prepare(sql));
    int index = 1;
    select.Bind(index++, group);
    select.Bind(index++, stream);
    if (query.after_sequence) select.Bind(index++, *query.after_sequence);
    if (query.before_sequence) select.Bind(index++, *query.before_sequence);
    if (query.start_millis) select.Bind(index++, *query.start_millis);
    if (query.end_millis) select.Bind(index++, *query.end_millis);
    select.Bind(index++, query.limit);

    std::vector<LogEvent> out;
    while (true) {
      ASSIGN_OR_RETURN(bool row, select.Step());
      if (!row) break;
      out.push_back(LogEvent{.timestamp_millis = select.ColumnInt64(1),
                             .message = select.ColumnText(3),
                             .ingestion_millis = select.ColumnInt64(2),
                             .sequence = select.ColumnInt64(0),
                             .stream = std::string(stream)});
    }
    if (newest) std::reverse(out.begin(), out.end());
    return out;
  }

  Result<std::vector<LogEvent>> Filter(std::string_view group, const FilterQuery& query) override {
    RETURN_IF_ERROR(ValidateLimit(query.limit));
    std::lock_guard lock(mu_);
    ASSIGN_OR_RETURN(bool group_exists, GroupExists(group));
    if (!group_exists) return GroupMissing();

    // The page ends at an event; resuming needs its place in (timestamp, event_id) order, since
    // a later append may carry an earlier timestamp than events already returned.
    std::optional<std::int64_t> after_timestamp;
    if (query.after_global_sequence) {
      ASSIGN_OR_RETURN(auto position, db_->Prepare("SELECT timestamp_millis FROM log_events"
                                                   " WHERE group_name = ? AND event_id = ?"));
      position.Bind(1, group).Bind(2, *query.after_global_sequence);
      ASSIGN_OR_RETURN(bool found, position.Step());
      if (!found) {
        return InvalidArgument("no event " + std::to_string(*query.after_global_sequence) +
                               " in log group " + std::string(group) + " to resume after");
      }
      after_timestamp = position.ColumnInt64(0);
    }

    std::string sql =
        "SELECT stream_name, event_id, timestamp_millis, ingestion_millis, message"
        " FROM log_events WHERE group_name = ?";
    if (!query.stream_names.empty()) {
      sql += " AND stream_name IN (?";
      for (std::size_t i = 1; i < query.stream_names.size(); ++i) sql += ", ?";
      sql += ")";
    }
    if (!query.stream_prefix.empty()) sql += " AND substr(stream_name, 1, length(?)) = ?";
    if (query.start_millis) sql += " AND timestamp_millis >= ?";
    if (query.end_millis) sql += " AND timestamp_millis < ?";
    if (after_timestamp) {
      sql += " AND (timestamp_millis > ? OR (timestamp_millis = ? AND event_id > ?))";
    }
    sql += " ORDER BY timestamp_millis, event_id";
    // With a substring filter the limit applies after matching, which happens here in C++
    // (exact, case-sensitive, portable) while the cursor walks rows in order.
    const bool filtered = !query.contains.empty();
    if (!filtered) sql += " LIMIT ?";

    ASSIGN_OR_RETURN(auto select, db_->Prepare(sql));
    int index = 1;
    select.Bind(index++, group);
    for (const std::string& name : query.stream_names) select.Bind(index++, name);
    if (!query.stream_prefix.empty()) {
      select.Bind(index++, query.stream_prefix);
      select.Bind(index++, query.stream_prefix);
    }
    if (query.start_millis) select.Bind(index++, *query.start_millis);
    if (query.end_millis) select.Bind(index++, *query.end_millis);
    if (after_timestamp) {
      select.Bind(index++, *after_timestamp);
      select.Bind(index++, *after_timestamp);
      select.Bind(index++, *query.after_global_sequence);
    }
    if (!filtered) select.Bind(index++, query.limit);

    std::vector<LogEvent> out;
    while (static_cast<int>(out.size()) < query.limit) {
      ASSIGN_OR_RETURN(bool row, select.Step());
      if (!row) break;
      std::string message = select.ColumnText(4);
      if (filtered && message.find(query.contains) == std::string::npos) continue;
      out.push_back(LogEvent{.timestamp_millis = select.ColumnInt64(2),
                             .message = std::move(message),
                             .ingestion_millis = select.ColumnInt64(3),
                             .sequence = select.ColumnInt64(1),
                             .stream = select.ColumnText(0)});
    }
    return out;
  }

  Status AppendMetrics(std::string_view kind, std::string_view name,
                       const std::vector<MetricPoint>& points) override {
    if (kind.empty() || name.empty()) {
      return InvalidArgument("metric owner kind and name must not be empty");
    }
    std::lock_guard lock(mu_);
    ASSIGN_OR_RETURN(auto txn, SqliteTransaction::Begin(*db_));
    RETURN_IF_ERROR(AppendMetricsLocked(kind, name, points));
    return txn.Commit();
  }

 private:
  Status AppendMetricsLocked(std::string_view kind, std::string_view name,
                             const std::vector<MetricPoint>& points) {
    ASSIGN_OR_RETURN(auto last, db_->Prepare("SELECT COALESCE(MAX(seq), 0) FROM metric_points"
                                             " WHERE kind = ? AND name = ?"));
    last.Bind(1, kind).Bind(2, name);
    ASSIGN_OR_RETURN(bool row, last.Step());
    std::int64_t seq = row ? last.ColumnInt64(0) : 0;
    ASSIGN_OR_RETURN(auto insert, db_->Prepare("INSERT INTO metric_points"
                                               " (kind, name, seq, metric, timestamp_millis, value)"
                                               " VALUES (?, ?, ?, ?, ?, ?)"));
    for (const MetricPoint& point : points) {
      insert.Reset();
      insert.Bind(1, kind)
          .Bind(2, name)
          .Bind(3, ++seq)
          .Bind(4, point.name)
          .Bind(5, point.timestamp_millis);
      // SQLite cannot store NaN (it becomes NULL); NULL reads back as NaN below.
      if (std::isnan(point.value)) {
        insert.BindNull(6);
      } else {
        insert.Bind(6, point.value);
      }
      RETURN_IF_ERROR(insert.Run());
    }
    return Status::Ok();
  }

 public:
  Result<std::vector<MetricPoint>> Metrics(std::string_view kind, std::string_view name) override {
    std::lock_guard lock(mu_);
    ASSIGN_OR_RETURN(auto select,
                     db_->Prepare("SELECT metric, value, timestamp_millis FROM metric_points"
                                  " WHERE kind = ? AND name = ? ORDER BY seq"));
    select.Bind(1, kind).Bind(2, name);
    std::vector<MetricPoint> out;
    while (true) {
      ASSIGN_OR_RETURN(bool row, select.Step());
      if (!row) break;
      out.push_back(MetricPoint{.name = select.ColumnText(0),
                                .value = select.ColumnIsNull(1)
                                             ? std::numeric_limits<double>::quiet_NaN()
                                             : select.ColumnDouble(1),
                                .timestamp_millis = select.ColumnInt64(2)});
    }
    return out;
  }

 private:
  static Status ValidateNames(std::string_view group, std::string_view stream) {
    if (group.empty()) return InvalidArgument("log group name must not be empty");
    if (stream.empty()) return InvalidArgument("log stream name must not be empty");
    return Status::Ok();
  }

  // Requires mu_ and an open write transaction.
  Status EnsureStreamLocked(std::string_view group, std::string_view stream, std::int64_t now) {
    ASSIGN_OR_RETURN(auto insert_group,
                     db_->Prepare("INSERT INTO log_groups"
                                  " (group_name, creation_millis, last_event_id, stored_bytes)"
                                  " VALUES (?, ?, 0, 0) ON CONFLICT (group_name) DO NOTHING"));
    RETURN_IF_ERROR(insert_group.Bind(1, group).Bind(2, now).Run());
    ASSIGN_OR_RETURN(auto insert_stream,
                     db_->Prepare("INSERT INTO log_streams (group_name, stream_name,"
                                  " creation_millis, last_ingestion_millis, last_sequence,"
                                  " stored_bytes) VALUES (?, ?, ?, 0, 0, 0)"
                                  " ON CONFLICT (group_name, stream_name) DO NOTHING"));
    return insert_stream.Bind(1, group).Bind(2, stream).Bind(3, now).Run();
  }

  // Requires mu_.
  Result<bool> GroupExists(std::string_view group) {
    ASSIGN_OR_RETURN(auto select, db_->Prepare("SELECT 1 FROM log_groups WHERE group_name = ?"));
    select.Bind(1, group);
    return select.Step();
  }

  std::mutex mu_;
  std::unique_ptr<SqliteDb> db_;  // guarded by mu_
};

}  // namespace

Result<std::unique_ptr<MetadataStore>> OpenSqliteMetadataStore(const SqliteOptions& options) {
  // FULL: a resource's state transition must survive power loss, and these writes are few.
  ASSIGN_OR_RETURN(auto db, OpenAndMigrate(options, "FULL"));
  return std::unique_ptr<MetadataStore>(std::make_unique<SqliteMetadataStore>(std::move(db)));
}

Result<std::unique_ptr<LogStore>> OpenSqliteLogStore(const SqliteOptions& options) {
  // NORMAL: in WAL mode this still survives a process crash; only the last few log lines may
  // be lost on power loss, which is worth the many fewer fsyncs under chatty training jobs.
  ASSIGN_OR_RETURN(auto db, OpenAndMigrate(options, "NORMAL"));
  return std::unique_ptr<LogStore>(std::make_unique<SqliteLogStore>(std::move(db)));
}

}  // namespace hearth::metadata
