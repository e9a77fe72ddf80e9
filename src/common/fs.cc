#include "common/fs.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include <fcntl.h>
#include <unistd.h>

#include "common/ids.h"

namespace hearth {

namespace {
Status Errno(std::string_view what, const std::filesystem::path& path) {
  return Internal(std::string(what) + " " + path.string() + ": " + std::strerror(errno));
}
}  // namespace

OwnedFd::~OwnedFd() {
  if (fd_ >= 0) ::close(fd_);
}

OwnedFd& OwnedFd::operator=(OwnedFd&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.fd_;
    o.fd_ = -1;
  }
  return *this;
}

bool WriteAllToFd(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

Status FsyncPath(const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Errno("open", path);
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return Errno("fsync", path);
  return Status::Ok();
}

Status WriteFileAtomic(const std::filesystem::path& path, std::string_view data,
                       Durability durability) {
  const bool sync = durability == Durability::kSurvivesMachineCrash;
  std::filesystem::path tmp = path;
  tmp += ".tmp-" + NewUuid();
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Errno("create", tmp);
  if (!WriteAllToFd(fd, data)) {
    Status s = Errno("write", tmp);
    ::close(fd);
    ::unlink(tmp.c_str());
    return s;
  }
  if ((sync && ::fsync(fd) != 0) || ::close(fd) != 0) {
    Status s = Errno("fsync", tmp);
    ::unlink(tmp.c_str());
    return s;
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    Status s = Errno("rename", tmp);
    ::unlink(tmp.c_str());
    return s;
  }
  if (!sync) return Status::Ok();
  return FsyncPath(path.parent_path().empty() ? "." : path.parent_path());
}

Result<std::string> ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("cannot open " + path.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace hearth
