// Small filesystem helpers with the durability rules Hearth relies on.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "common/status.h"

namespace hearth {

// Writes `data` to `path` atomically: temp file in the same directory, fsync, rename, fsync of
// the directory. A reader sees the old file or the new one, never a part.
Status WriteFileAtomic(const std::filesystem::path& path, std::string_view data);

Result<std::string> ReadFile(const std::filesystem::path& path);

// fsync of a file or directory by path.
Status FsyncPath(const std::filesystem::path& path);

}  // namespace hearth
