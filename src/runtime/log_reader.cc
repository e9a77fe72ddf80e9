#include "runtime/log_reader.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <string_view>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace hearth::runtime {

namespace {

// Bounds the memory of one call; the supervisor caps a record at 64 KiB of text.
constexpr std::size_t kMaxReadBytes = 4 * 1024 * 1024;

// Control characters are stored as '#' and three octal digits, as SageMaker's training logs
// show them in CloudWatch (rsyslog's escaping): XGBoost's "[3]\ttrain-rmse:.." reads
// "[3]#011train-rmse:..", and the metric regexes users copy from SageMaker match it.
std::string EscapeControlCharacters(std::string_view text) {
  if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      out += '#';
      out += static_cast<char>('0' + ((u >> 6) & 7));
      out += static_cast<char>('0' + ((u >> 3) & 7));
      out += static_cast<char>('0' + (u & 7));
    } else {
      out += c;
    }
  }
  return out;
}

OutputLine ParseLine(std::string_view line) {
  OutputLine out;
  std::size_t sp1 = line.find(' ');
  std::size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  std::string_view tag =
      sp2 == std::string_view::npos ? std::string_view() : line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::int64_t millis = 0;
  auto [ptr, ec] =
      std::from_chars(line.data(), line.data() + (sp1 == std::string_view::npos ? 0 : sp1), millis);
  if (sp2 == std::string_view::npos || ec != std::errc() || ptr != line.data() + sp1 ||
      (tag != "stdout" && tag != "stderr")) {
    out.text = EscapeControlCharacters(line);  // not ours: keep the bytes rather than drop them
    return out;
  }
  out.timestamp_millis = millis;
  out.is_stderr = tag == "stderr";
  out.text = EscapeControlCharacters(line.substr(sp2 + 1));
  return out;
}

}  // namespace

Result<std::vector<OutputLine>> ReadOutputLines(const std::filesystem::path& log_file,
                                                std::uint64_t* offset) {
  std::vector<OutputLine> lines;
  int fd = ::open(log_file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return lines;
    return Internal("open " + log_file.string() + ": " + std::strerror(errno));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    Status s = Internal("stat " + log_file.string() + ": " + std::strerror(errno));
    ::close(fd);
    return s;
  }
  std::uint64_t size = static_cast<std::uint64_t>(st.st_size);
  if (*offset > size) {
    ::close(fd);
    return InvalidArgument("offset " + std::to_string(*offset) + " is past the end of " +
                           log_file.string());
  }
  std::string buf(std::min<std::uint64_t>(size - *offset, kMaxReadBytes), '\0');
  std::size_t got = 0;
  while (got < buf.size()) {
    ssize_t n = ::pread(fd, buf.data() + got, buf.size() - got, static_cast<off_t>(*offset + got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      Status s = Internal("read " + log_file.string() + ": " + std::strerror(errno));
      ::close(fd);
      return s;
    }
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  ::close(fd);
  buf.resize(got);

  std::string_view rest(buf);
  std::uint64_t consumed = 0;
  while (true) {
    std::size_t nl = rest.find('\n');
    if (nl == std::string_view::npos) break;
    lines.push_back(ParseLine(rest.substr(0, nl)));
    rest.remove_prefix(nl + 1);
    consumed += nl + 1;
  }
  // A full buffer without a newline is not a partial line but garbage; skip it to make progress.
  if (consumed == 0 && got == kMaxReadBytes) {
    lines.push_back(ParseLine(rest));
    consumed = got;
  }
  *offset += consumed;
  return lines;
}

}  // namespace hearth::runtime
