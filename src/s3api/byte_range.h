// HTTP Range headers as S3 honours them on GetObject/HeadObject, and the stricter
// x-amz-copy-source-range of UploadPartCopy.
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "common/status.h"

namespace hearth::s3api {

struct ByteRange {
  std::uint64_t first = 0;
  std::uint64_t last = 0;  // inclusive
  std::uint64_t length() const { return last - first + 1; }
};

// "bytes=a-b" (b clamped to the end), "bytes=a-", "bytes=-n" (the last n bytes) against an
// object of `size` bytes. Returns nullopt — serve the whole object with 200 — when the header
// is syntactically not one byte range (another unit, several ranges, a > b), as S3 does.
// Returns InvalidArgument with reason "InvalidRange" (416) when the range is well formed but
// selects nothing: a >= size, "-0", or any range of an empty object.
Result<std::optional<ByteRange>> ParseRangeHeader(std::string_view header, std::uint64_t size);

// x-amz-copy-source-range: exactly "bytes=a-b" with a <= b < size; anything else is
// InvalidArgument (reason "InvalidArgument").
Result<ByteRange> ParseCopySourceRange(std::string_view header, std::uint64_t size);

}  // namespace hearth::s3api
