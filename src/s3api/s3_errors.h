// The one place where a Status becomes an S3 error: the error Code the clients switch on and
// the HTTP status, plus the XML error document S3 sends.
//
// A Status's `reason` names the S3 code when the layer below knew it ("NoSuchKey",
// "BucketNotEmpty", ... see storage/object_store.h); otherwise the StatusCode picks a generic
// one (kInvalidArgument -> InvalidArgument 400, kInternal -> InternalError 500, ...).
//
// Thread safety: pure functions.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"
#include "http/http_message.h"

namespace hearth::s3api {

struct S3Error {
  int http_status = 500;
  std::string code;  // "NoSuchKey"
};

// The mapping. Never returns a 2xx status.
S3Error ToS3Error(const Status& status);

// The full error response: XML body (none for HEAD, as S3 sends none), Content-Type and
// x-amz-request-id. `resource` is the request path.
http::Response S3ErrorResponse(const Status& status, std::string_view resource,
                               std::string_view request_id, bool head_request);

}  // namespace hearth::s3api
