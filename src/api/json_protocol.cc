#include "api/json_protocol.h"

#include "api/error_map.h"
#include "spdlog/spdlog.h"

namespace hearth::api {

using nlohmann::json;

JsonProtocolService::JsonProtocolService(std::string target_prefix, const ServiceModel& model,
                                         std::map<std::string, OperationHandler> operations)
    : target_prefix_(std::move(target_prefix)), model_(model), operations_(std::move(operations)) {}

bool JsonProtocolService::Claims(const http::Request& request) const {
  auto target = request.headers.Get("x-amz-target");
  return target && target->rfind(target_prefix_ + ".", 0) == 0;
}

http::Response JsonProtocolService::Handle(http::Request& request) const {
  std::string target = request.headers.GetOr("x-amz-target", "");
  std::string op = target.substr(std::min(target.size(), target_prefix_.size() + 1));
  if (request.method != "POST") {
    return JsonErrorResponse(
        InvalidArgument("JSON 1.1 requests must use POST", "UnknownOperationException"),
        request.request_id);
  }
  auto it = operations_.find(op);
  if (it == operations_.end()) {
    return JsonErrorResponse(Unimplemented("Operation '" + op + "' is not supported by Hearth's " +
                                               target_prefix_ + " API.",
                                           "UnknownOperationException"),
                             request.request_id);
  }
  auto body = request.body.ReadAll();
  if (!body.ok()) return JsonErrorResponse(body.status(), request.request_id);
  json input = json::parse(body->empty() ? std::string("{}") : *body, nullptr,
                           /*allow_exceptions=*/false);
  if (input.is_discarded() || !input.is_object()) {
    return JsonErrorResponse(
        InvalidArgument("The request body is not a JSON object.", "SerializationException"),
        request.request_id);
  }
  // Members sent as null count as absent, as the service reads them.
  for (auto i = input.begin(); i != input.end();) {
    i = i->is_null() ? input.erase(i) : std::next(i);
  }
  if (Status valid = model_.ValidateInput(op, input); !valid.ok()) {
    return JsonErrorResponse(valid, request.request_id);
  }
  Result<json> result = it->second(input);
  if (!result.ok()) {
    if (result.status().code() == StatusCode::kInternal) {
      spdlog::error("{} {} failed: {}", target_prefix_, op, result.status().ToString());
    }
    return JsonErrorResponse(result.status(), request.request_id);
  }
  http::Response r;
  r.body = result->dump();
  r.SetHeader("Content-Type", "application/x-amz-json-1.1");
  r.SetHeader("x-amzn-RequestId", request.request_id);
  return r;
}

}  // namespace hearth::api
