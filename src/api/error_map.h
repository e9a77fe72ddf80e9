// The one place where a Status becomes a JSON-protocol wire error (SageMaker and CloudWatch
// Logs both speak AWS JSON 1.1): HTTP status plus {"__type": <code>, "message": <text>}, the
// shape botocore parses. S3's XML errors are mapped in s3api/s3_errors.h.
#pragma once

#include <string>

#include "common/status.h"
#include "http/http_message.h"

namespace hearth::api {

struct WireError {
  int http_status = 400;
  std::string code;  // "ValidationException", "ResourceNotFound", ...
};

// A Status reason, when set, is already the wire code ("ResourceInUse",
// "ResourceNotFoundException", "SerializationException"); otherwise the code decides.
WireError ToWireError(const Status& status);

http::Response JsonErrorResponse(const Status& status, const std::string& request_id);

}  // namespace hearth::api
