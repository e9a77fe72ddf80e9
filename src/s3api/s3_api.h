// S3Api serves the S3 REST API (path-style: /<bucket>/<key>) over an ObjectStore, in the
// shapes the AWS CLI v1/v2 and boto3 send and parse: buckets, objects (ranged and conditional
// GETs, copies, batch deletes), listings v1 and v2, multipart uploads, aws-chunked streaming
// bodies and the x-amz-checksum-* additional checksums.
//
// Bodies are streamed: a PUT's body (in memory or spooled to a file by the HTTP server) is
// decoded piece by piece into an ObjectWriter, never loaded whole. Nothing is stored when a
// body fails a digest or checksum: the writer is discarded before Commit().
//
// Every response carries x-amz-request-id (Request::request_id); every failure becomes an S3
// XML error through S3ErrorResponse (s3_errors.h). HEAD responses never have a body.
// Requests are not authenticated here; the server's auth hook runs before Handle().
//
// Thread safety: Handle() may be called concurrently from many threads (the class holds no
// mutable state; the store is thread safe).
#pragma once

#include <cstdint>
#include <optional>

#include "http/http_message.h"
#include "storage/object_store.h"

namespace hearth::s3api {

// A single PUT (PutObject, UploadPart) larger than this is refused with EntityTooLarge.
inline constexpr std::uint64_t kMaxSinglePutBytes = 5ull * 1024 * 1024 * 1024;

class S3Api {
 public:
  // `store` is not owned and must outlive this object.
  explicit S3Api(storage::ObjectStore& store);

  // Never throws; failures come back as S3 error responses.
  http::Response Handle(http::Request& request);

  // For the HTTP server's precheck hook: looks at the headers only, before the body is read,
  // and returns the refusal for a request that can never succeed (today: a single PUT over
  // kMaxSinglePutBytes -> EntityTooLarge). nullopt lets the request through.
  std::optional<http::Response> Precheck(const http::Request& request) const;

 private:
  storage::ObjectStore& store_;
};

}  // namespace hearth::s3api
