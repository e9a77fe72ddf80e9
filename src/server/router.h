// Router: decides which front end answers a request arriving on the one port.
//
// A signed request names its service in the SigV4 credential scope: "s3" goes to S3;
// "sagemaker" and "logs" go to their JSON 1.1 services by X-Amz-Target (SageMaker's runtime
// API, also signed "sagemaker", is recognised by its /endpoints/<name>/... path). An unsigned
// request is routed by X-Amz-Target if it has one, else it is S3 (path style).
// The authentication hook runs first on every request.
//
// Thread safety: immutable after construction; called concurrently.
#pragma once

#include <functional>
#include <optional>

#include "api/json_protocol.h"
#include "api/runtime_api.h"
#include "common/status.h"
#include "http/http_message.h"
#include "s3api/s3_api.h"

namespace hearth::server {

// Verifies who is calling. Today it accepts every request (credentials are parsed, not
// checked); SigV4 verification plugs in here.
using AuthHook = std::function<Status(const http::Request&)>;

class Router {
 public:
  // None of the services are owned; all must outlive the router.
  Router(const api::JsonProtocolService& sagemaker, const api::JsonProtocolService& logs,
         const api::RuntimeApi& runtime, s3api::S3Api& s3, AuthHook auth);

  std::optional<http::Response> Precheck(const http::Request& request) const;
  http::Response Handle(http::Request& request) const;

 private:
  enum class Front { kSageMaker, kLogs, kRuntime, kS3 };
  Front Pick(const http::Request& request) const;

  const api::JsonProtocolService& sagemaker_;
  const api::JsonProtocolService& logs_;
  const api::RuntimeApi& runtime_;
  s3api::S3Api& s3_;
  AuthHook auth_;
};

}  // namespace hearth::server
