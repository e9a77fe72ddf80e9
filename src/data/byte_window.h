// ByteWindow: a sliding window over the bytes of one input — a file (read through a 1-4 MiB
// buffer from an fd, so FIFOs fed in Pipe mode work), a `.gz` file (zlib), or an in-memory
// body (viewed in place, never copied).
//
// Parsers look at [begin(), end()), consume what they have parsed, and call Refill() when a
// line or record runs past end(). Refill keeps the unconsumed bytes and grows the buffer when
// they already fill it, so one line or record may be larger than the buffer.
//
// Thread safety: one window per thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"

namespace hearth::data {

class ByteWindow {
 public:
  static constexpr std::size_t kDefaultBufferBytes = std::size_t{2} << 20;

  // Opens `path` for reading; a name ending in ".gz" is decompressed on the fly.
  static Result<std::unique_ptr<ByteWindow>> OpenFile(const std::filesystem::path& path,
                                                      std::size_t buffer_bytes = kDefaultBufferBytes);
  // Views `bytes` (which must outlive the window); `name` is what errors call it.
  static std::unique_ptr<ByteWindow> OverMemory(std::string_view bytes, std::string name);

  ~ByteWindow();
  ByteWindow(const ByteWindow&) = delete;
  ByteWindow& operator=(const ByteWindow&) = delete;

  const char* begin() const { return begin_; }
  const char* end() const { return end_; }
  std::size_t size() const { return static_cast<std::size_t>(end_ - begin_); }
  // Bytes consumed since the input started: the offset of begin() in the input.
  std::uint64_t offset() const { return consumed_; }
  // True once the input has no bytes beyond end().
  bool at_eof() const { return eof_; }
  const std::string& name() const { return name_; }

  void Consume(std::size_t n) {
    begin_ += n;
    consumed_ += n;
  }
  void ConsumeTo(const char* p) { Consume(static_cast<std::size_t>(p - begin_)); }

  // Reads more bytes after end(), keeping [begin(), end()). Returns false (and sets at_eof())
  // when the input had nothing more.
  Result<bool> Refill();

 private:
  ByteWindow() = default;
  Result<std::size_t> ReadSome(char* dst, std::size_t n);

  std::string name_;
  int fd_ = -1;
  void* gz_ = nullptr;  // gzFile, kept opaque so zlib.h stays out of this header
  std::unique_ptr<char[]> buffer_;
  std::size_t capacity_ = 0;
  const char* begin_ = nullptr;
  const char* end_ = nullptr;
  std::uint64_t consumed_ = 0;
  bool eof_ = false;
};

}  // namespace hearth::data
