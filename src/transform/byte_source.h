// ByteSource: where a transform job reads one S3 object's bytes from, in order.
//
// A source is a callable that fills `dst` with up to `n` bytes and returns how many it wrote;
// 0 means the end of the object. It may return fewer than `n` bytes at any time (a network
// read, a decompressor's output), so callers loop. An error is returned as a Status and ends
// the object.
//
// The controller feeds a splitter from storage (SourceFromReadAt over
// storage::ObjectReader::ReadAt), tests feed it from memory (SourceFromMemory), and an object
// with TransformInput.CompressionType = Gzip is wrapped in GunzipSource.
//
// Thread safety: a source is used by one thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace hearth::transform {

using ByteSource = std::function<Result<std::size_t>(char* dst, std::size_t n)>;

// Reads `bytes` from the start; `bytes` is not copied and must outlive the source.
// `max_read` caps each read (tests use 1 or 7 to check that nothing depends on read sizes).
ByteSource SourceFromMemory(std::string_view bytes, std::size_t max_read = SIZE_MAX);

// Reads through a positioned reader with the signature of storage::ObjectReader::ReadAt
// (`read_at(offset, n, out)` replaces *out with up to n bytes at offset; short only at EOF).
// The source keeps the offset; `read_at` must outlive the source.
using ReadAtFn = std::function<Status(std::uint64_t offset, std::size_t n, std::string* out)>;
ByteSource SourceFromReadAt(ReadAtFn read_at);

// Decompresses gzip (RFC 1952) read from `compressed`, as SageMaker does for
// TransformInput.CompressionType = Gzip. Concatenated gzip members (what `cat a.gz b.gz` and
// parallel gzip tools write) read as one stream. Corrupt or truncated input is an
// InvalidArgument naming `name` (the object key) and the decompressed offset reached.
// Memory: one 256 KiB input buffer plus zlib's 32 KiB window.
ByteSource GunzipSource(ByteSource compressed, std::string name);

}  // namespace hearth::transform
