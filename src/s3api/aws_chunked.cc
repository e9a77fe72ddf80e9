#include "s3api/aws_chunked.h"

#include <algorithm>
#include <cctype>

namespace hearth::s3api {

namespace {

// A size line is "<hex>;chunk-signature=<64 hex>" at most; anything much longer is garbage,
// and bounding it keeps a malicious body from growing `line_` without limit.
constexpr std::size_t kMaxLineBytes = 8192;
constexpr std::size_t kMaxTrailers = 64;

Status Malformed(std::string_view why) {
  return InvalidArgument("aws-chunked body is malformed: " + std::string(why), "IncompleteBody");
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

Status AwsChunkedDecoder::ParseSizeLine(std::string_view line) {
  std::string_view size_part = line.substr(0, line.find(';'));
  size_part = Trim(size_part);
  // 15 hex digits already exceed any object S3 accepts; the bound also prevents overflow.
  if (size_part.empty() || size_part.size() > 15) return Malformed("bad chunk size line");
  std::uint64_t size = 0;
  for (char c : size_part) {
    int v = HexValue(c);
    if (v < 0) return Malformed("chunk size is not hexadecimal");
    size = size * 16 + static_cast<std::uint64_t>(v);
  }
  if (size == 0) {
    state_ = State::kTrailerLine;
  } else {
    remaining_ = size;
    state_ = State::kData;
  }
  return Status::Ok();
}

Status AwsChunkedDecoder::ParseTrailerLine(std::string_view line) {
  if (line.empty()) {
    state_ = State::kDone;
    return Status::Ok();
  }
  auto colon = line.find(':');
  if (colon == std::string_view::npos || colon == 0) return Malformed("bad trailer line");
  if (trailers_.size() >= kMaxTrailers) return Malformed("too many trailers");
  std::string name(Trim(line.substr(0, colon)));
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  trailers_.emplace_back(std::move(name), std::string(Trim(line.substr(colon + 1))));
  return Status::Ok();
}

Status AwsChunkedDecoder::Feed(std::string_view in, const Sink& sink) {
  while (!in.empty()) {
    switch (state_) {
      case State::kSizeLine:
      case State::kTrailerLine: {
        auto nl = in.find('\n');
        std::string_view piece = in.substr(0, nl);
        if (line_.size() + piece.size() > kMaxLineBytes) return Malformed("line too long");
        line_.append(piece);
        if (nl == std::string_view::npos) return Status::Ok();  // line continues in next piece
        in.remove_prefix(nl + 1);
        if (line_.empty() || line_.back() != '\r') return Malformed("line not ended by CRLF");
        line_.pop_back();
        Status s = state_ == State::kSizeLine ? ParseSizeLine(line_) : ParseTrailerLine(line_);
        line_.clear();
        RETURN_IF_ERROR(s);
        break;
      }
      case State::kData: {
        std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, in.size()));
        RETURN_IF_ERROR(sink(in.substr(0, n)));
        in.remove_prefix(n);
        remaining_ -= n;
        decoded_size_ += n;
        if (remaining_ == 0) state_ = State::kDataCr;
        break;
      }
      case State::kDataCr:
        if (in.front() != '\r') return Malformed("chunk data longer than its declared size");
        in.remove_prefix(1);
        state_ = State::kDataLf;
        break;
      case State::kDataLf:
        if (in.front() != '\n') return Malformed("chunk data not followed by CRLF");
        in.remove_prefix(1);
        state_ = State::kSizeLine;
        break;
      case State::kDone:
        return Malformed("bytes after the final chunk");
    }
  }
  return Status::Ok();
}

Status AwsChunkedDecoder::Finish() const {
  if (state_ == State::kDone) return Status::Ok();
  // Some writers stop right after the zero-size chunk (or its trailers) without the closing
  // empty line; the payload is complete then, so accept it.
  if (state_ == State::kTrailerLine && line_.empty()) return Status::Ok();
  return Malformed("body ended before the final chunk");
}

}  // namespace hearth::s3api
