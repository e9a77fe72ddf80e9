// Wall-clock time in the forms the wire protocols use, and elapsed time for phase timings.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace hearth {

// Milliseconds since the Unix epoch (UTC).
std::int64_t NowMillis();

// Seconds since the Unix epoch with millisecond precision: SageMaker's JSON timestamps.
double NowEpochSeconds();

// "2026-11-28T04:23:17.123Z" (S3 XML LastModified).
std::string FormatIso8601Millis(std::int64_t epoch_millis);

// "Sat, 28 Nov 2026 04:23:17 GMT" (HTTP Last-Modified, Date).
std::string FormatHttpDate(std::int64_t epoch_millis);

// Seconds elapsed on the monotonic clock since `start`.
inline double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace hearth
