#include "common/clock.h"

#include <chrono>
#include <ctime>

namespace hearth {

std::int64_t NowMillis() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

double NowEpochSeconds() { return static_cast<double>(NowMillis()) / 1000.0; }

namespace {
std::tm ToUtc(std::int64_t epoch_millis) {
  std::time_t secs = static_cast<std::time_t>(epoch_millis / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  return tm;
}
}  // namespace

std::string FormatIso8601Millis(std::int64_t epoch_millis) {
  std::tm tm = ToUtc(epoch_millis);
  char buf[40];
  size_t n = std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof(buf) - n, ".%03dZ", static_cast<int>(epoch_millis % 1000));
  return buf;
}

std::string FormatHttpDate(std::int64_t epoch_millis) {
  std::tm tm = ToUtc(epoch_millis);
  char buf[40];
  std::strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return buf;
}

}  // namespace hearth
