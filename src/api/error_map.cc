#include "api/error_map.h"

#include <nlohmann/json.hpp>

namespace hearth::api {

WireError ToWireError(const Status& status) {
  WireError e;
  switch (status.code()) {
    case StatusCode::kOk:
    case StatusCode::kInvalidArgument:
    case StatusCode::kFailedPrecondition:
      e = {400, "ValidationException"};
      break;
    case StatusCode::kNotFound:
      e = {400, "ResourceNotFound"};
      break;
    case StatusCode::kAlreadyExists:
      e = {400, "ResourceInUse"};
      break;
    case StatusCode::kResourceExhausted:
      e = {400, "ResourceLimitExceeded"};
      break;
    case StatusCode::kUnauthenticated:
      e = {403, "UnrecognizedClientException"};
      break;
    case StatusCode::kPermissionDenied:
      e = {403, "AccessDeniedException"};
      break;
    case StatusCode::kUnimplemented:
      e = {400, "UnknownOperationException"};
      break;
    case StatusCode::kUnavailable:
      e = {503, "ServiceUnavailable"};
      break;
    case StatusCode::kDeadlineExceeded:
    case StatusCode::kAborted:
      e = {500, "InternalFailure"};
      break;
    case StatusCode::kInternal:
      e = {500, "InternalFailure"};
      break;
  }
  if (!status.reason().empty()) e.code = status.reason();
  return e;
}

http::Response JsonErrorResponse(const Status& status, const std::string& request_id) {
  WireError e = ToWireError(status);
  http::Response r;
  r.status = e.http_status;
  r.body = nlohmann::json{{"__type", e.code}, {"message", status.message()}}.dump();
  r.SetHeader("Content-Type", "application/x-amz-json-1.1");
  r.SetHeader("x-amzn-RequestId", request_id);
  r.SetHeader("x-amzn-ErrorType", e.code);
  return r;
}

}  // namespace hearth::api
