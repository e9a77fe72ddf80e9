#include "http/http_message.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <strings.h>
#include <unistd.h>

#include "common/fs.h"

namespace hearth::http {

namespace {

// ASCII only: header names are tokens, and std::tolower's locale lookup costs more than the
// rest of a lookup.
char LowerAscii(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + ('a' - 'A')) : c; }

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = LowerAscii(c);
  return out;
}

// `lower` is already lower-case.
bool EqualsLowered(std::string_view lower, std::string_view name) {
  if (lower.size() != name.size()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    if (lower[i] != LowerAscii(name[i])) return false;
  }
  return true;
}

}  // namespace

void Headers::Add(std::string_view name, std::string_view value) {
  // A request has a handful of headers: one allocation for them all.
  if (entries_.empty()) entries_.reserve(8);
  entries_.emplace_back(Lower(name), std::string(value));
}

const std::string* Headers::Find(std::string_view name) const {
  for (const auto& [k, v] : entries_) {
    if (EqualsLowered(k, name)) return &v;
  }
  return nullptr;
}

std::optional<std::string> Headers::Get(std::string_view name) const {
  if (const std::string* v = Find(name)) return *v;
  return std::nullopt;
}

std::string Headers::GetOr(std::string_view name, std::string_view fallback) const {
  const std::string* v = Find(name);
  return v ? *v : std::string(fallback);
}

RequestBody RequestBody::InMemory(std::string data) {
  RequestBody b;
  b.size_ = data.size();
  b.data_ = std::move(data);
  return b;
}

RequestBody RequestBody::Spooled(std::filesystem::path file, std::uint64_t size) {
  RequestBody b;
  b.file_ = std::move(file);
  b.size_ = size;
  return b;
}

RequestBody::RequestBody(RequestBody&& o) noexcept
    : data_(std::move(o.data_)), file_(std::move(o.file_)), size_(o.size_) {
  o.file_.clear();
  o.size_ = 0;
}

RequestBody& RequestBody::operator=(RequestBody&& o) noexcept {
  if (this != &o) {
    if (!file_.empty()) ::unlink(file_.c_str());
    data_ = std::move(o.data_);
    file_ = std::move(o.file_);
    size_ = o.size_;
    o.file_.clear();
    o.size_ = 0;
  }
  return *this;
}

RequestBody::~RequestBody() {
  if (!file_.empty()) ::unlink(file_.c_str());
}

Result<std::string> RequestBody::ReadAll() const& {
  if (!spooled()) return data_;
  return ReadFile(file_);
}

Result<std::string> RequestBody::ReadAll() && {
  if (spooled()) return ReadFile(file_);
  std::string out = std::move(data_);
  data_.clear();
  size_ = 0;
  return out;
}

Result<OwnedFd> RequestBody::OpenSpool() const {
  OwnedFd fd(::open(file_.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return Internal(std::string("open request body: ") + std::strerror(errno));
  return fd;
}

Status RequestBody::ReadChunkAt(int fd, std::uint64_t offset, std::size_t n, std::string* out) {
  out->resize(n);
  std::size_t got = 0;
  while (got < n) {
    ssize_t r = ::pread(fd, out->data() + got, n - got, static_cast<off_t>(offset + got));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += static_cast<std::size_t>(r);
  }
  if (got != n) return Internal("request body spool file is shorter than the body");
  return Status::Ok();
}

std::optional<std::string> Request::QueryParam(std::string_view key) const {
  for (const auto& [k, v] : query) {
    if (k == key) return v;
  }
  return std::nullopt;
}

void Response::SetHeader(std::string_view name, std::string_view value) {
  for (auto& [k, v] : headers) {
    if (k.size() == name.size() && strncasecmp(k.data(), name.data(), name.size()) == 0) {
      v = std::string(value);
      return;
    }
  }
  if (headers.empty()) headers.reserve(6);
  headers.emplace_back(std::string(name), std::string(value));
}

bool PercentDecode(std::string_view in, std::string* out) {
  std::string s;
  s.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      s.push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size() || !std::isxdigit(static_cast<unsigned char>(in[i + 1])) ||
        !std::isxdigit(static_cast<unsigned char>(in[i + 2]))) {
      return false;
    }
    s.push_back(static_cast<char>(std::stoi(std::string(in.substr(i + 1, 2)), nullptr, 16)));
    i += 2;
  }
  *out = std::move(s);
  return true;
}

std::string UriEncode(std::string_view in, bool keep_slash) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(in.size() * 3);
  for (unsigned char c : in) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' ||
        (keep_slash && c == '/')) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xF]);
    }
  }
  return out;
}

}  // namespace hearth::http
