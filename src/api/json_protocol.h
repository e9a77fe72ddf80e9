// JsonProtocolService: the AWS JSON 1.1 protocol once, for every service Hearth speaks it for
// (SageMaker, CloudWatch Logs): `POST /` with `X-Amz-Target: <Prefix>.<Operation>`, a JSON
// body, validation against the botocore model, dispatch to a handler, and errors through
// error_map.h.
//
// Thread safety: immutable after construction; Handle may be called concurrently.
#pragma once

#include <functional>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "api/service_model.h"
#include "common/status.h"
#include "http/http_message.h"

namespace hearth::api {

using OperationHandler = std::function<Result<nlohmann::json>(const nlohmann::json& input)>;

class JsonProtocolService {
 public:
  // `target_prefix` is "SageMaker" or "Logs_20140328". `model` is not owned.
  JsonProtocolService(std::string target_prefix, const ServiceModel& model,
                      std::map<std::string, OperationHandler> operations);

  // True if the request's X-Amz-Target names this service.
  bool Claims(const http::Request& request) const;
  http::Response Handle(http::Request& request) const;

 private:
  std::string target_prefix_;
  const ServiceModel& model_;
  std::map<std::string, OperationHandler> operations_;
};

}  // namespace hearth::api
