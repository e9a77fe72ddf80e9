// LogStore keeps what training hosts (and, later, endpoints) print, in CloudWatch Logs' model:
// log groups ("/aws/sagemaker/TrainingJobs") hold streams ("<job>/algo-1-<epoch>") of events
// (timestamp in ms + one message). It backs the Logs read API (DescribeLogStreams,
// GetLogEvents, FilterLogEvents) that the AWS CLI and the SageMaker SDK call. It also keeps
// metric time series parsed from those logs.
//
// Events of one stream keep the order they were appended in; each gets a sequence number that
// tokens page on.
//
// Thread safety: all methods may be called concurrently.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace hearth::metadata {

struct LogEvent {
  std::int64_t timestamp_millis = 0;
  std::string message;
  std::int64_t ingestion_millis = 0;  // set by the store
  std::int64_t sequence = 0;          // set by the store; increasing within a stream
  std::string stream;                 // set by reads that span streams
};

struct LogGroupInfo {
  std::string name;
  std::int64_t creation_millis = 0;
  std::int64_t stored_bytes = 0;
};

struct LogStreamInfo {
  std::string group;
  std::string name;
  std::int64_t creation_millis = 0;
  std::optional<std::int64_t> first_event_millis;
  std::optional<std::int64_t> last_event_millis;
  std::int64_t last_ingestion_millis = 0;
  std::int64_t stored_bytes = 0;
};

struct GetEventsQuery {
  std::optional<std::int64_t> start_millis;     // inclusive
  std::optional<std::int64_t> end_millis;       // exclusive
  std::optional<std::int64_t> after_sequence;   // forward paging: events with sequence > this
  std::optional<std::int64_t> before_sequence;  // backward paging: events with sequence < this
  bool from_head = false;  // without a sequence bound: oldest first (true) or newest (false)
  int limit = 10000;
};

struct FilterQuery {
  std::vector<std::string> stream_names;  // empty: all streams
  std::string stream_prefix;
  std::optional<std::int64_t> start_millis;
  std::optional<std::int64_t> end_millis;
  std::string contains;                               // simple substring filter; empty: all events
  std::optional<std::int64_t> after_global_sequence;  // paging across streams
  int limit = 10000;
};

struct MetricPoint {
  std::string name;
  double value = 0;
  std::int64_t timestamp_millis = 0;
};

class LogStore {
 public:
  virtual ~LogStore() = default;

  // Creates the group and stream if they do not exist (idempotent).
  virtual Status EnsureStream(std::string_view group, std::string_view stream) = 0;
  // Appends in order, in one transaction, creating the group and stream if needed.
  virtual Status Append(std::string_view group, std::string_view stream,
                        const std::vector<LogEvent>& events) = 0;
  // Groups whose name starts with `prefix` (empty: all), ordered by name. Added after the first
  // draft of this interface, hence the default body: implementations other than SQLite may not
  // have it yet.
  virtual Result<std::vector<LogGroupInfo>> ListGroups(std::string_view prefix) {
    return Unimplemented("ListGroups is not implemented by this LogStore");
  }
  // NotFound("ResourceNotFoundException") if the group is unknown. Ordered by name.
  virtual Result<std::vector<LogStreamInfo>> ListStreams(std::string_view group,
                                                         std::string_view prefix) = 0;
  // Events of one stream in sequence order (ascending), at most `limit`, within the time bounds.
  // Which `limit` events: those right after `after_sequence` if set; else those right before
  // `before_sequence` if set; else the oldest when `from_head` and the newest otherwise.
  // NotFound("ResourceNotFoundException") if the group or the stream is unknown.
  virtual Result<std::vector<LogEvent>> GetEvents(std::string_view group, std::string_view stream,
                                                  const GetEventsQuery& query) = 0;
  // Events across streams ordered by (timestamp, global sequence). `sequence` in the result is
  // the global sequence to page on: `after_global_sequence` resumes right after that event in
  // this order (InvalidArgument if no event of the group has it). `contains` is a
  // case-sensitive substring. NotFound("ResourceNotFoundException") if the group is unknown.
  virtual Result<std::vector<LogEvent>> Filter(std::string_view group,
                                               const FilterQuery& query) = 0;

  // Metric series of one resource ("TrainingJob", name).
  // The crash-safe ingest of one source (a host's output file) into one stream: appends
  // `events`, and `metrics` under (metrics_kind, metrics_name) when given, and records
  // `source_position` (how far into its source the stream now reaches, e.g. a byte offset)
  // — all in one transaction. An ingester that restarts reads SourcePosition() and resumes
  // there, so no line is lost or stored twice.
  virtual Status IngestFromSource(std::string_view group, std::string_view stream,
                                  const std::vector<LogEvent>& events,
                                  std::string_view metrics_kind, std::string_view metrics_name,
                                  const std::vector<MetricPoint>& metrics,
                                  std::int64_t source_position) = 0;
  // 0 for a stream that has never ingested from a source (or does not exist).
  virtual Result<std::int64_t> SourcePosition(std::string_view group, std::string_view stream) = 0;

  virtual Status AppendMetrics(std::string_view kind, std::string_view name,
                               const std::vector<MetricPoint>& points) = 0;
  // In the order appended; empty if the resource has none.
  virtual Result<std::vector<MetricPoint>> Metrics(std::string_view kind,
                                                   std::string_view name) = 0;
};

}  // namespace hearth::metadata
