// A streaming decoder for S3's `aws-chunked` content encoding: the framing that SigV4 streaming
// uploads (x-amz-content-sha256: STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]) and unsigned
// trailer uploads (STREAMING-UNSIGNED-PAYLOAD-TRAILER, what botocore sends with a checksum over
// TLS) use:
//
//   <hex-size>[;chunk-signature=<sig>]\r\n <size bytes> \r\n   ... repeated ...
//   0[;chunk-signature=<sig>]\r\n
//   [<trailer-name>:<value>\r\n]...        e.g. x-amz-checksum-crc32:AAAAAA==
//   \r\n
//
// The decoder is fed the encoded body in arbitrary pieces (a split may fall anywhere, even
// inside "\r\n") and hands decoded payload bytes to a sink as they arrive, so a 5 GB upload
// never sits in memory. Chunk signatures are parsed and kept out of the payload but not
// verified (the server does not verify SigV4 signatures yet).
//
// Thread safety: one decoder per request; not thread safe.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace hearth::s3api {

class AwsChunkedDecoder {
 public:
  using Sink = std::function<Status(std::string_view payload)>;

  // Decodes `encoded` (the next piece of the body) and passes payload bytes to `sink`.
  // Returns InvalidArgument (reason "IncompleteBody") on malformed framing, on bytes after the
  // final chunk, or the sink's own error. After an error the decoder must not be fed again.
  Status Feed(std::string_view encoded, const Sink& sink);

  // Call once the whole body was fed. Returns InvalidArgument ("IncompleteBody") if the stream
  // stopped before the final zero-size chunk or inside a trailer line. A stream that ends
  // right after the zero-size chunk, without the closing empty line, is accepted.
  Status Finish() const;

  bool done() const { return state_ == State::kDone; }
  std::uint64_t decoded_size() const { return decoded_size_; }
  // Trailer headers after the final chunk, names lower-cased, values trimmed, in order.
  const std::vector<std::pair<std::string, std::string>>& trailers() const { return trailers_; }

 private:
  enum class State { kSizeLine, kData, kDataCr, kDataLf, kTrailerLine, kDone };

  Status ParseSizeLine(std::string_view line);
  Status ParseTrailerLine(std::string_view line);

  State state_ = State::kSizeLine;
  std::string line_;             // the header or trailer line being collected
  std::uint64_t remaining_ = 0;  // payload bytes left in the current chunk
  std::uint64_t decoded_size_ = 0;
  std::vector<std::pair<std::string, std::string>> trailers_;
};

}  // namespace hearth::s3api
