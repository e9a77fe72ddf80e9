// ObjectStore is how Hearth keeps blobs: datasets, checkpoints, model artifacts. It has S3's
// model — buckets of objects named by arbitrary UTF-8 keys — because the S3 front end
// (s3api/) and the `s3://` URIs of training jobs both resolve against it.
//
// Implementations: LocalObjectStore (local_object_store.h: a directory of immutable blob files
// plus a SQLite index). A remote S3 backend can come later behind this interface.
//
// Durability contract (every implementation):
//   - A write becomes visible atomically when it is committed: a reader sees the old object or
//     the new one, never a part, and a crash at any moment leaves one of the two.
//   - A committed write is durable (fsync'd) before Commit() returns.
//   - A reader that has opened an object keeps reading the bytes it opened, even if the key is
//     overwritten or deleted meanwhile.
//
// Errors (Status code, reason):
//   kNotFound "NoSuchBucket" | "NoSuchKey" | "NoSuchUpload"
//   kAlreadyExists "BucketAlreadyOwnedByYou"
//   kFailedPrecondition "BucketNotEmpty"
//   kInvalidArgument "InvalidBucketName" | "InvalidPart" | "InvalidPartOrder" | "BadDigest" |
//                    "EntityTooSmall" | "InvalidRange" | "KeyTooLongError"
//
// Thread safety: all methods may be called concurrently from many threads.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace hearth::storage {

struct BucketInfo {
  std::string name;
  std::int64_t creation_millis = 0;
};

struct ObjectInfo {
  std::string key;
  std::uint64_t size = 0;
  std::string etag;  // hex MD5 without quotes; "<hex>-<parts>" for multipart objects
  std::int64_t last_modified_millis = 0;
  std::string content_type;                          // empty when the writer gave none
  std::map<std::string, std::string> user_metadata;  // x-amz-meta-* without the prefix
};

struct PutOptions {
  std::string content_type;
  std::map<std::string, std::string> user_metadata;
  // Raw 16-byte MD5 the client claims (Content-MD5). Commit fails with BadDigest on mismatch.
  std::optional<std::string> expected_md5;
};

// Streams one object (or one multipart part) in. Nothing is visible until Commit().
// Destroying an uncommitted writer discards what was written.
class ObjectWriter {
 public:
  virtual ~ObjectWriter() = default;
  virtual Status Append(std::string_view data) = 0;
  virtual Result<ObjectInfo> Commit() = 0;
};

// Reads one object as it was when opened.
class ObjectReader {
 public:
  virtual ~ObjectReader() = default;
  virtual const ObjectInfo& info() const = 0;
  // Reads up to `n` bytes at `offset` into `out` (replacing its contents). Short only at EOF.
  virtual Status ReadAt(std::uint64_t offset, std::size_t n, std::string* out) = 0;
  // Copies the whole object to a new local file at `dest` (used to stage training data).
  virtual Status CopyTo(const std::filesystem::path& dest) = 0;
  // A new descriptor (the caller closes it) of a local file holding exactly this object's
  // bytes, so a server can send them without copying through memory; -1 when the backend keeps
  // no local file. The file never changes while open: blobs are immutable.
  virtual int DupFd() const { return -1; }
};

struct ListOptions {
  std::string prefix;
  std::string delimiter;    // empty: no grouping
  std::string start_after;  // exclusive; keys (and common prefixes) after this only
  int max_keys = 1000;      // objects + common prefixes returned, at most
};

struct ListResult {
  std::vector<ObjectInfo> objects;           // in key order
  std::vector<std::string> common_prefixes;  // in order; only when a delimiter was given
  bool truncated = false;
  std::string last_returned;  // last key or common prefix returned: the next start_after
};

struct PartInfo {
  int part_number = 0;
  std::uint64_t size = 0;
  std::string etag;  // hex MD5 of the part, without quotes
  std::int64_t last_modified_millis = 0;
};

struct CompletedPart {
  int part_number = 0;
  std::string etag;  // as the client sent it; quotes are tolerated
};

struct UploadInfo {
  std::string upload_id;
  std::string bucket;
  std::string key;
  std::int64_t initiated_millis = 0;
};

class ObjectStore {
 public:
  virtual ~ObjectStore() = default;

  // Bucket names follow S3's rules (3-63 chars, lower case, digits, '.', '-').
  virtual Status CreateBucket(std::string_view bucket) = 0;
  virtual Status DeleteBucket(std::string_view bucket) = 0;  // must be empty
  virtual Result<BucketInfo> HeadBucket(std::string_view bucket) = 0;
  virtual Result<std::vector<BucketInfo>> ListBuckets() = 0;

  virtual Result<std::unique_ptr<ObjectWriter>> OpenForWrite(std::string_view bucket,
                                                             std::string_view key,
                                                             const PutOptions& options) = 0;
  virtual Result<std::unique_ptr<ObjectReader>> OpenForRead(std::string_view bucket,
                                                            std::string_view key) = 0;
  virtual Result<ObjectInfo> Stat(std::string_view bucket, std::string_view key) = 0;
  // Deleting a missing key is not an error (S3 semantics); a missing bucket is.
  virtual Status DeleteObject(std::string_view bucket, std::string_view key) = 0;
  // Copies bytes; metadata comes from `options` when `replace_metadata`, else from the source.
  virtual Result<ObjectInfo> CopyObject(std::string_view src_bucket, std::string_view src_key,
                                        std::string_view dst_bucket, std::string_view dst_key,
                                        const PutOptions& options, bool replace_metadata) = 0;
  virtual Result<ListResult> List(std::string_view bucket, const ListOptions& options) = 0;

  // Multipart upload. Parts are 1..10000; all but the last must be >= 5 MiB at Complete.
  virtual Result<std::string> CreateMultipartUpload(std::string_view bucket, std::string_view key,
                                                    const PutOptions& options) = 0;
  // The part is stored when the writer commits; a part number written twice keeps the last.
  virtual Result<std::unique_ptr<ObjectWriter>> OpenPartForWrite(
      std::string_view bucket, std::string_view key, std::string_view upload_id, int part_number,
      std::optional<std::string> expected_md5) = 0;
  virtual Result<ObjectInfo> CompleteMultipartUpload(std::string_view bucket, std::string_view key,
                                                     std::string_view upload_id,
                                                     const std::vector<CompletedPart>& parts) = 0;
  virtual Status AbortMultipartUpload(std::string_view bucket, std::string_view key,
                                      std::string_view upload_id) = 0;
  virtual Result<std::vector<PartInfo>> ListParts(std::string_view bucket, std::string_view key,
                                                  std::string_view upload_id) = 0;
  virtual Result<std::vector<UploadInfo>> ListMultipartUploads(std::string_view bucket) = 0;

  // Convenience: one-shot write of an in-memory body.
  Result<ObjectInfo> PutObject(std::string_view bucket, std::string_view key, std::string_view data,
                               const PutOptions& options = {});
  // Convenience: one-shot read of a whole object.
  Result<std::string> GetObject(std::string_view bucket, std::string_view key);
};

// A parsed `s3://bucket/key/prefix` URI. Returns InvalidArgument for anything else.
struct S3Location {
  std::string bucket;
  std::string key;  // may be empty
};
Result<S3Location> ParseS3Uri(std::string_view uri);

}  // namespace hearth::storage
