// The request and response that Hearth's front ends (api/, s3api/, the runtime routes) see.
// The HTTP server (http_server.h) parses the wire with Boost.Beast and fills these; handlers
// never touch Beast.
//
// Request bodies larger than a threshold are spooled to a temp file so that a 5 GB PUT does
// not sit in memory; handlers read them through RequestBody.
//
// Thread safety: values; one request is handled by one thread.
#pragma once

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/fs.h"
#include "common/status.h"
#include "http/sigv4.h"

namespace hearth::http {

// Header names are stored lower-cased; lookups are case-insensitive.
class Headers {
 public:
  void Add(std::string_view name, std::string_view value);
  // First value, or nullopt.
  std::optional<std::string> Get(std::string_view name) const;
  // First value, or nullptr; valid until the headers change. Copies nothing.
  const std::string* Find(std::string_view name) const;
  std::string GetOr(std::string_view name, std::string_view fallback) const;
  bool Has(std::string_view name) const { return Find(name) != nullptr; }
  const std::vector<std::pair<std::string, std::string>>& all() const { return entries_; }

 private:
  std::vector<std::pair<std::string, std::string>> entries_;  // (lower-case name, value)
};

class RequestBody {
 public:
  RequestBody() = default;
  static RequestBody InMemory(std::string data);
  // Takes ownership of the file: it is removed when the body is destroyed.
  static RequestBody Spooled(std::filesystem::path file, std::uint64_t size);
  RequestBody(RequestBody&&) noexcept;
  RequestBody& operator=(RequestBody&&) noexcept;
  RequestBody(const RequestBody&) = delete;
  RequestBody& operator=(const RequestBody&) = delete;
  ~RequestBody();

  std::uint64_t size() const { return size_; }
  bool spooled() const { return !file_.empty(); }
  // Whole body in memory (reads the file if spooled). For small control-plane bodies.
  Result<std::string> ReadAll() const&;
  // The same, moving an in-memory body out instead of copying it (`std::move(b).ReadAll()`);
  // the body is then empty. A spooled body is read and left as it was.
  Result<std::string> ReadAll() &&;
  // The body itself when it is in memory; empty when it is spooled.
  std::string_view in_memory() const { return data_; }
  // Streams the body in chunks of at most `chunk` bytes to `sink`; stops at the first error.
  template <typename Sink>
  Status ForEachChunk(std::size_t chunk, Sink&& sink) const;

 private:
  Result<OwnedFd> OpenSpool() const;
  // Reads exactly `n` bytes at `offset` of the spool file (fewer is an error).
  static Status ReadChunkAt(int fd, std::uint64_t offset, std::size_t n, std::string* out);

  std::string data_;
  std::filesystem::path file_;
  std::uint64_t size_ = 0;
};

struct Request {
  std::string method;    // "GET", "PUT", ...
  std::string target;    // raw request target: path plus query, as sent
  std::string path;      // percent-decoded path, without the query
  std::string raw_path;  // path as sent (still percent-encoded), for SigV4
  // Decoded query parameters in the order sent; a key without '=' has an empty value.
  std::vector<std::pair<std::string, std::string>> query;
  Headers headers;
  RequestBody body;
  std::string request_id;                     // assigned by the server
  std::optional<SigV4Credential> credential;  // parsed from Authorization / X-Amz-Credential

  std::optional<std::string> QueryParam(std::string_view key) const;
  bool HasQueryParam(std::string_view key) const { return QueryParam(key).has_value(); }
};

// A file region sent as the response body (GetObject) without loading it into memory.
// The descriptor is owned: the server closes it after sending.
struct FileBody {
  std::shared_ptr<OwnedFd> fd;
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
};

struct Response {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::optional<FileBody> file;  // when set, sent instead of `body`
  // For HEAD: the Content-Length to announce without sending a body.
  std::optional<std::uint64_t> head_content_length;

  void SetHeader(std::string_view name, std::string_view value);
};

template <typename Sink>
Status RequestBody::ForEachChunk(std::size_t chunk, Sink&& sink) const {
  if (!spooled()) {
    for (std::size_t off = 0; off < data_.size(); off += chunk) {
      RETURN_IF_ERROR(sink(std::string_view(data_).substr(off, chunk)));
    }
    return Status::Ok();
  }
  ASSIGN_OR_RETURN(OwnedFd fd, OpenSpool());
  std::string buf;
  for (std::uint64_t off = 0; off < size_; off += chunk) {
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(chunk, size_ - off));
    RETURN_IF_ERROR(ReadChunkAt(fd.get(), off, n, &buf));
    RETURN_IF_ERROR(sink(std::string_view(buf)));
  }
  return Status::Ok();
}

// Percent-decoding of a URI component ('+' is kept as '+'). Returns false on a bad escape.
bool PercentDecode(std::string_view in, std::string* out);
// RFC 3986 encoding as SigV4 and S3 listings use it; '/' kept when `keep_slash`.
std::string UriEncode(std::string_view in, bool keep_slash);

}  // namespace hearth::http
