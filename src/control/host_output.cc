#include "control/host_output.h"

#include <string>

#include "runtime/log_reader.h"

namespace hearth::control {

Result<std::vector<metadata::MetricPoint>> IngestHostOutput(
    metadata::LogStore& logs, const std::filesystem::path& output_log, std::uint64_t* offset,
    std::string_view group, std::string_view stream, std::string_view source_kind,
    std::string_view source_name, const MetricRegexes& metrics) {
  const std::uint64_t previous = *offset;
  auto lines = runtime::ReadOutputLines(output_log, offset);
  if (!lines.ok() || lines->empty()) return std::vector<metadata::MetricPoint>();
  std::vector<metadata::LogEvent> events;
  std::vector<metadata::MetricPoint> points;
  events.reserve(lines->size());
  for (const auto& line : *lines) {
    events.push_back({.timestamp_millis = line.timestamp_millis, .message = line.text});
    for (const auto& [metric, re] : metrics) {
      std::string captured;
      if (!RE2::PartialMatch(line.text, *re, &captured)) continue;
      try {
        points.push_back({.name = metric,
                          .value = std::stod(captured),
                          .timestamp_millis = line.timestamp_millis});
      } catch (...) {
        // Not a number: dropped.
      }
    }
  }
  Status stored = logs.IngestFromSource(group, stream, events, source_kind, source_name, points,
                                        static_cast<std::int64_t>(*offset));
  if (!stored.ok()) {
    *offset = previous;
    return stored;
  }
  return points;
}

}  // namespace hearth::control
