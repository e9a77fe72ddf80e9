#include "transform/byte_source.h"

#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include <fmt/format.h>

namespace hearth::transform {

ByteSource SourceFromMemory(std::string_view bytes, std::size_t max_read) {
  auto pos = std::make_shared<std::size_t>(0);
  if (max_read == 0) max_read = 1;
  return [bytes, max_read, pos](char* dst, std::size_t n) -> Result<std::size_t> {
    std::size_t take = std::min({n, max_read, bytes.size() - *pos});
    std::memcpy(dst, bytes.data() + *pos, take);
    *pos += take;
    return take;
  };
}

ByteSource SourceFromReadAt(ReadAtFn read_at) {
  struct State {
    ReadAtFn read_at;
    std::uint64_t offset = 0;
    std::string chunk;
  };
  auto state = std::make_shared<State>();
  state->read_at = std::move(read_at);
  return [state](char* dst, std::size_t n) -> Result<std::size_t> {
    RETURN_IF_ERROR(state->read_at(state->offset, n, &state->chunk));
    std::size_t got = std::min(n, state->chunk.size());
    std::memcpy(dst, state->chunk.data(), got);
    state->offset += got;
    return got;
  };
}

namespace {

class Gunzip {
 public:
  static constexpr std::size_t kInputBytes = std::size_t{256} << 10;

  Gunzip(ByteSource compressed, std::string name)
      : compressed_(std::move(compressed)), name_(std::move(name)), in_(new char[kInputBytes]) {
    std::memset(&z_, 0, sizeof(z_));
    // 16 + MAX_WBITS: gzip header and trailer, not zlib's.
    init_ok_ = inflateInit2(&z_, 16 + MAX_WBITS) == Z_OK;
  }
  ~Gunzip() {
    if (init_ok_) inflateEnd(&z_);
  }

  Result<std::size_t> Read(char* dst, std::size_t n) {
    if (!init_ok_) return Internal("cannot initialise zlib for " + name_);
    if (done_ || n == 0) return std::size_t{0};
    // zlib counts in uInt.
    n = std::min<std::size_t>(n, std::size_t{1} << 30);
    z_.next_out = reinterpret_cast<Bytef*>(dst);
    z_.avail_out = static_cast<uInt>(n);
    while (z_.avail_out == n) {
      if (z_.avail_in == 0 && !source_eof_) {
        ASSIGN_OR_RETURN(std::size_t got, compressed_(in_.get(), kInputBytes));
        if (got == 0) {
          source_eof_ = true;
        } else {
          z_.next_in = reinterpret_cast<Bytef*>(in_.get());
          z_.avail_in = static_cast<uInt>(got);
          member_has_input_ = true;
        }
      }
      if (z_.avail_in == 0 && source_eof_) {
        if (member_has_input_ || !any_member_) return Corrupt("truncated gzip stream");
        done_ = true;
        break;
      }
      int rc = inflate(&z_, Z_NO_FLUSH);
      if (rc == Z_STREAM_END) {
        // Another member may follow (concatenated gzip files read as one stream).
        any_member_ = true;
        member_has_input_ = false;
        if (inflateReset(&z_) != Z_OK) return Corrupt("cannot reset zlib");
        continue;
      }
      if (rc == Z_BUF_ERROR) continue;  // needs more input
      if (rc != Z_OK) return Corrupt(z_.msg != nullptr ? z_.msg : "inflate failed");
      // Input left unconsumed means a member is in progress.
      member_has_input_ = true;
    }
    std::size_t produced = n - z_.avail_out;
    out_total_ += produced;
    return produced;
  }

 private:
  Status Corrupt(std::string_view why) {
    return InvalidArgument(fmt::format(
        "object '{}' is not valid gzip (TransformInput.CompressionType Gzip): {} after {} "
        "decompressed bytes",
        name_, why, out_total_));
  }

  ByteSource compressed_;
  std::string name_;
  std::unique_ptr<char[]> in_;
  z_stream z_;
  bool init_ok_ = false;
  bool source_eof_ = false;
  bool done_ = false;
  bool any_member_ = false;       // a whole member was read
  bool member_has_input_ = false;  // bytes of an unfinished member were fed
  std::uint64_t out_total_ = 0;
};

}  // namespace

ByteSource GunzipSource(ByteSource compressed, std::string name) {
  auto gz = std::make_shared<Gunzip>(std::move(compressed), std::move(name));
  return [gz](char* dst, std::size_t n) { return gz->Read(dst, n); };
}

}  // namespace hearth::transform
