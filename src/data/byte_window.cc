#include "data/byte_window.h"

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>

namespace hearth::data {
namespace {

// A FIFO hands out at most its pipe buffer per read(); keep reading until half the free space
// has arrived, so that parsing works on large chunks without always waiting for a full buffer.
// gzread takes an unsigned int length.
constexpr std::size_t kMaxGzRead = std::size_t{1} << 30;

}  // namespace

Result<std::unique_ptr<ByteWindow>> ByteWindow::OpenFile(const std::filesystem::path& path,
                                                         std::size_t buffer_bytes) {
  std::unique_ptr<ByteWindow> w(new ByteWindow());
  w->name_ = path.string();
  w->fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (w->fd_ < 0) {
    int err = errno;
    std::string msg = "cannot open " + w->name_ + ": " + std::strerror(err);
    if (err == ENOENT) return NotFound(std::move(msg));
    return Internal(std::move(msg));
  }
  if (path.extension() == ".gz") {
    gzFile gz = gzdopen(w->fd_, "rb");
    if (gz == nullptr) return Internal("cannot open " + w->name_ + " as gzip");
    w->fd_ = -1;  // owned by gz now
    gzbuffer(gz, 1u << 20);
    w->gz_ = gz;
  }
  w->capacity_ = buffer_bytes < 4096 ? 4096 : buffer_bytes;
  w->buffer_.reset(new char[w->capacity_]);
  w->begin_ = w->end_ = w->buffer_.get();
  return w;
}

std::unique_ptr<ByteWindow> ByteWindow::OverMemory(std::string_view bytes, std::string name) {
  std::unique_ptr<ByteWindow> w(new ByteWindow());
  w->name_ = std::move(name);
  w->begin_ = bytes.data();
  w->end_ = bytes.data() + bytes.size();
  w->eof_ = true;
  return w;
}

ByteWindow::~ByteWindow() {
  if (gz_ != nullptr) gzclose(static_cast<gzFile>(gz_));
  if (fd_ >= 0) ::close(fd_);
}

Result<std::size_t> ByteWindow::ReadSome(char* dst, std::size_t n) {
  if (gz_ != nullptr) {
    auto gz = static_cast<gzFile>(gz_);
    int got = gzread(gz, dst, static_cast<unsigned>(n < kMaxGzRead ? n : kMaxGzRead));
    if (got < 0) {
      int code = 0;
      const char* msg = gzerror(gz, &code);
      return InvalidArgument(name_ + ": gzip error: " + (msg ? msg : "unknown"));
    }
    // A truncated stream ends with a short read and an error recorded, not with got < 0.
    if (got == 0) {
      int code = 0;
      const char* msg = gzerror(gz, &code);
      if (code != Z_OK && code != Z_STREAM_END) {
        return InvalidArgument(name_ + ": gzip error: " + (msg ? msg : "unknown"));
      }
    }
    return static_cast<std::size_t>(got);
  }
  while (true) {
    ssize_t got = ::read(fd_, dst, n);
    if (got >= 0) return static_cast<std::size_t>(got);
    if (errno == EINTR) continue;
    return Internal("cannot read " + name_ + ": " + std::strerror(errno));
  }
}

Result<bool> ByteWindow::Refill() {
  if (eof_) return false;
  char* base = buffer_.get();
  std::size_t kept = size();
  if (kept == capacity_) {
    // One line or record is larger than the buffer: grow it.
    std::size_t bigger = capacity_ * 2;
    std::unique_ptr<char[]> grown(new char[bigger]);
    std::memcpy(grown.get(), begin_, kept);
    buffer_ = std::move(grown);
    capacity_ = bigger;
    base = buffer_.get();
  } else if (begin_ != base && kept > 0) {
    std::memmove(base, begin_, kept);
  }
  begin_ = base;
  char* write = base + kept;
  std::size_t free_bytes = capacity_ - kept;
  std::size_t want = (free_bytes + 1) / 2;
  std::size_t got_total = 0;
  while (got_total < want) {
    ASSIGN_OR_RETURN(std::size_t got, ReadSome(write + got_total, free_bytes - got_total));
    if (got == 0) {
      eof_ = true;
      break;
    }
    got_total += got;
  }
  end_ = write + got_total;
  return got_total > 0;
}

}  // namespace hearth::data
