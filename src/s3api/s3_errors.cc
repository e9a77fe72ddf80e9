#include "s3api/s3_errors.h"

#include <utility>

#include "s3api/s3_xml.h"

namespace hearth::s3api {

namespace {

struct KnownCode {
  std::string_view code;
  int http_status;
};

// S3 error codes that Hearth produces, with the HTTP status S3 pairs them with.
constexpr KnownCode kKnownCodes[] = {
    {"AccessDenied", 403},
    {"BadDigest", 400},
    {"BucketAlreadyExists", 409},
    {"BucketAlreadyOwnedByYou", 409},
    {"BucketNotEmpty", 409},
    {"EntityTooLarge", 400},
    {"EntityTooSmall", 400},
    {"IncompleteBody", 400},
    {"InternalError", 500},
    {"InvalidArgument", 400},
    {"InvalidBucketName", 400},
    {"InvalidDigest", 400},
    {"InvalidPart", 400},
    {"InvalidPartOrder", 400},
    {"InvalidRange", 416},
    {"InvalidRequest", 400},
    {"KeyTooLongError", 400},
    {"MalformedXML", 400},
    {"MethodNotAllowed", 405},
    {"MissingContentLength", 411},
    {"NoSuchBucket", 404},
    {"NoSuchKey", 404},
    {"NoSuchUpload", 404},
    {"NoSuchTagSet", 404},
    {"NotImplemented", 501},
    {"PreconditionFailed", 412},
    {"ServiceUnavailable", 503},
    {"SlowDown", 503},
    {"XAmzContentSHA256Mismatch", 400},
    {"InvalidAccessKeyId", 403},
    {"MetadataTooLarge", 400},
    {"InvalidURI", 400},
};

S3Error FromCode(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:  // not an error; a caller bug, so say so loudly
    case StatusCode::kInternal:
      return {500, "InternalError"};
    case StatusCode::kInvalidArgument:
      return {400, "InvalidArgument"};
    case StatusCode::kNotFound:
      return {404, "NoSuchKey"};
    case StatusCode::kAlreadyExists:
      return {409, "BucketAlreadyOwnedByYou"};
    case StatusCode::kFailedPrecondition:
      return {400, "InvalidRequest"};
    case StatusCode::kResourceExhausted:
      return {503, "SlowDown"};
    case StatusCode::kUnauthenticated:
      return {403, "InvalidAccessKeyId"};
    case StatusCode::kPermissionDenied:
      return {403, "AccessDenied"};
    case StatusCode::kUnimplemented:
      return {501, "NotImplemented"};
    case StatusCode::kUnavailable:
      return {503, "ServiceUnavailable"};
    case StatusCode::kDeadlineExceeded:
    case StatusCode::kAborted:
      return {500, "InternalError"};
  }
  return {500, "InternalError"};
}

}  // namespace

S3Error ToS3Error(const Status& status) {
  if (!status.reason().empty()) {
    for (const auto& known : kKnownCodes) {
      if (known.code == status.reason()) return {known.http_status, std::string(known.code)};
    }
  }
  return FromCode(status.code());
}

http::Response S3ErrorResponse(const Status& status, std::string_view resource,
                               std::string_view request_id, bool head_request) {
  S3Error err = ToS3Error(status);
  http::Response response;
  response.status = err.http_status;
  response.SetHeader("x-amz-request-id", request_id);
  if (head_request) {
    response.head_content_length = 0;
    return response;
  }
  std::string message = status.message().empty() ? err.code : status.message();
  response.SetHeader("Content-Type", "application/xml");
  response.body = ErrorXml(err.code, message, resource, request_id);
  return response;
}

}  // namespace hearth::s3api
