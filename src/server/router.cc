#include "server/router.h"

#include "api/error_map.h"
#include "common/ids.h"
#include "s3api/s3_errors.h"

namespace hearth::server {

Router::Router(const api::JsonProtocolService& sagemaker, const api::JsonProtocolService& logs,
               s3api::S3Api& s3, AuthHook auth)
    : sagemaker_(sagemaker), logs_(logs), s3_(s3), auth_(std::move(auth)) {}

namespace {

// "/endpoints/<name>/invocations" (and the async and streaming forms): the runtime API's
// paths. Anything else under /endpoints/ is an S3 bucket named "endpoints".
bool IsRuntimePath(std::string_view path, std::string* endpoint) {
  constexpr std::string_view kPrefix = "/endpoints/";
  if (path.substr(0, kPrefix.size()) != kPrefix) return false;
  path.remove_prefix(kPrefix.size());
  std::size_t slash = path.find('/');
  if (slash == 0 || slash == std::string_view::npos) return false;
  std::string_view action = path.substr(slash + 1);
  if (action != "invocations" && action != "async-invocations" &&
      action != "invocations-response-stream") {
    return false;
  }
  if (endpoint != nullptr) *endpoint = std::string(path.substr(0, slash));
  return true;
}

}  // namespace

Router::Front Router::Pick(const http::Request& request) const {
  std::string service = request.credential ? request.credential->service : "";
  if (service == "s3") return Front::kS3;
  if (sagemaker_.Claims(request)) return Front::kSageMaker;
  if (logs_.Claims(request)) return Front::kLogs;
  if (request.method == "POST" && (service == "sagemaker" || service.empty()) &&
      IsRuntimePath(request.path, nullptr)) {
    return Front::kRuntime;
  }
  // An X-Amz-Target no service claims: SageMaker's front answers UnknownOperationException.
  if (request.headers.Has("x-amz-target")) return Front::kSageMaker;
  return Front::kS3;
}

std::optional<http::Response> Router::Precheck(const http::Request& request) const {
  if (Pick(request) == Front::kS3) return s3_.Precheck(request);
  return std::nullopt;
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
    case Front::kRuntime: {
      // Hosting comes with endpoints; until then no endpoint exists, which is what the
      // runtime API says for an unknown one.
      std::string endpoint;
      IsRuntimePath(request.path, &endpoint);
      return api::JsonErrorResponse(Status(StatusCode::kNotFound,
                                           "Endpoint " + endpoint + " of account " +
                                               AccountContext{}.account_id + " not found.",
                                           "ValidationError"),
                                    request.request_id);
    }
    case Front::kS3:
      return s3_.Handle(request);
  }
  return s3_.Handle(request);
}

}  // namespace hearth::server
