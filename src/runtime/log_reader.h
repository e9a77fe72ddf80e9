// Reads the lines a supervised process printed (`<state_dir>/output.log`), incrementally.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "common/status.h"

namespace hearth::runtime {

struct OutputLine {
  std::int64_t timestamp_millis = 0;
  bool is_stderr = false;
  std::string text;
};

// Returns the complete lines after byte `*offset` and advances `*offset` past them. A partial
// last line is left for the next call. A missing file yields no lines.
Result<std::vector<OutputLine>> ReadOutputLines(const std::filesystem::path& log_file,
                                                std::uint64_t* offset);

}  // namespace hearth::runtime
