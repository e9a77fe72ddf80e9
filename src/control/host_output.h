// Moving what a supervised process prints (runtime/host_process.h's output.log) into the
// LogStore, for every controller that runs processes: training hosts and endpoint instances.
//
// Thread safety: reentrant; one caller per (output.log, offset) at a time.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <re2/re2.h>

#include "common/status.h"
#include "metadata/log_store.h"

namespace hearth::control {

// A MetricDefinition compiled: the metric's name and the regex whose first group is its value.
using MetricRegexes = std::vector<std::pair<std::string, std::unique_ptr<RE2>>>;

// Reads the lines `output_log` gained since `*offset` and stores them in (group, stream),
// with the metric points `metrics` finds in them (for source_kind/source_name) and the new
// offset, in one transaction: after a crash, ingestion resumes exactly where the store says it
// got to. A match that is not a number is dropped, as SageMaker drops it. Returns the points
// stored (none when nothing was new). On a store error `*offset` is left where it was, so the
// same lines are read again next time, and the error is returned.
Result<std::vector<metadata::MetricPoint>> IngestHostOutput(
    metadata::LogStore& logs, const std::filesystem::path& output_log, std::uint64_t* offset,
    std::string_view group, std::string_view stream, std::string_view source_kind = {},
    std::string_view source_name = {}, const MetricRegexes& metrics = {});

}  // namespace hearth::control
