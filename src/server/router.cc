#include "server/router.h"

#include "api/error_map.h"
#include "s3api/s3_errors.h"

namespace hearth::server {

Router::Router(const api::JsonProtocolService& sagemaker, const api::JsonProtocolService& logs,
               s3api::S3Api& s3, AuthHook auth)
    : sagemaker_(sagemaker), logs_(logs), s3_(s3), auth_(std::move(auth)) {}

Router::Front Router::Pick(const http::Request& request) const {
  std::string service = request.credential ? request.credential->service : "";
  if (service == "s3") return Front::kS3;
  if (sagemaker_.Claims(request)) return Front::kSageMaker;
  if (logs_.Claims(request)) return Front::kLogs;
  if (request.method == "POST" && request.path.rfind("/endpoints/", 0) == 0 &&
      (service == "sagemaker" || service.empty())) {
    return Front::kRuntime;
  }
  if (request.headers.Has("x-amz-target")) return Front::kSageMaker;  // unknown target
  return Front::kS3;
}

std::optional<http::Response> Router::Precheck(const http::Request& request) const {
  if (Pick(request) == Front::kS3) return s3_.Precheck(request);
  return std::nullopt;
}

http::Response Router::Handle(http::Request& request) const {
  Front front = Pick(request);
  if (Status auth = auth_(request); !auth.ok()) {
    if (front == Front::kS3) return s3api::S3ErrorResponse(auth, request.path, request.request_id,
                                     request.method == "HEAD");
    return api::JsonErrorResponse(auth, request.request_id);
  }
  switch (front) {
    case Front::kSageMaker:
      return sagemaker_.Handle(request);
    case Front::kLogs:
      return logs_.Handle(request);
    case Front::kRuntime:
      return api::JsonErrorResponse(
          Status(StatusCode::kNotFound, "Endpoint not found: hosting is not available yet.",
                 "ValidationError"),
          request.request_id);
    case Front::kS3:
      return s3_.Handle(request);
  }
  return s3_.Handle(request);
}

}  // namespace hearth::server
