#include "server/router.h"

#include "api/error_map.h"
#include "s3api/s3_errors.h"

namespace hearth::server {

Router::Router(const api::JsonProtocolService& sagemaker, const api::JsonProtocolService& logs,
               const api::RuntimeApi& runtime, s3api::S3Api& s3, AuthHook auth)
    : sagemaker_(sagemaker), logs_(logs), runtime_(runtime), s3_(s3), auth_(std::move(auth)) {}

Router::Front Router::Pick(const http::Request& request) const {
  std::string service = request.credential ? request.credential->service : "";
  if (service == "s3") return Front::kS3;
  if (sagemaker_.Claims(request)) return Front::kSageMaker;
  if (logs_.Claims(request)) return Front::kLogs;
  if (request.method == "POST" && (service == "sagemaker" || service.empty()) &&
      api::IsRuntimePath(request.path)) {
    return Front::kRuntime;
  }
  // An X-Amz-Target no service claims: SageMaker's front answers UnknownOperationException.
  if (request.headers.Has("x-amz-target")) return Front::kSageMaker;
  return Front::kS3;
}

std::optional<http::Response> Router::Precheck(const http::Request& request) const {
  switch (Pick(request)) {
    case Front::kS3:
      return s3_.Precheck(request);
    case Front::kRuntime:
      return runtime_.Precheck(request);
    default:
      return std::nullopt;
  }
}

http::Response Router::Handle(http::Request& request) const {
  Front front = Pick(request);
  if (Status auth = auth_(request); !auth.ok()) {
    if (front == Front::kS3) {
      return s3api::S3ErrorResponse(auth, request.path, request.request_id,
                                    request.method == "HEAD");
    }
    return api::JsonErrorResponse(auth, request.request_id);
  }
  switch (front) {
    case Front::kSageMaker:
      return sagemaker_.Handle(request);
    case Front::kLogs:
      return logs_.Handle(request);
    case Front::kRuntime:
      return runtime_.Handle(request);
    case Front::kS3:
      return s3_.Handle(request);
  }
  return s3_.Handle(request);
}

}  // namespace hearth::server
