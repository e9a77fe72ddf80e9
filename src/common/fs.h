// Small filesystem helpers with the durability rules Hearth relies on.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "common/status.h"

namespace hearth {

// Owns a file descriptor; closes it on destruction. Move-only.
class OwnedFd {
 public:
  explicit OwnedFd(int fd = -1) : fd_(fd) {}
  ~OwnedFd();
  OwnedFd(OwnedFd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  OwnedFd& operator=(OwnedFd&& o) noexcept;
  OwnedFd(const OwnedFd&) = delete;
  OwnedFd& operator=(const OwnedFd&) = delete;
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }

 private:
  int fd_;
};

// Writes all of `data` to `fd`, retrying short writes and EINTR. False on any other error
// (errno says which).
bool WriteAllToFd(int fd, std::string_view data);

// Whether a write must survive a machine crash (fsync'd) or only a process crash. A file that
// is rebuilt anyway after a machine crash (a job's config files, which a restarted server
// writes again) need not pay for fsync on a latency-critical path.
enum class Durability { kSurvivesMachineCrash, kSurvivesProcessCrash };

// Writes `data` to `path` atomically: temp file in the same directory, (fsync,) rename, (fsync
// of the directory). A reader sees the old file or the new one, never a part.
Status WriteFileAtomic(const std::filesystem::path& path, std::string_view data,
                       Durability durability = Durability::kSurvivesMachineCrash);

Result<std::string> ReadFile(const std::filesystem::path& path);

// fsync of a file or directory by path.
Status FsyncPath(const std::filesystem::path& path);

}  // namespace hearth
