// RuntimeApi: SageMaker Runtime's InvokeEndpoint (protocol rest-json, botocore's
// sagemaker-runtime 2017-05-13): `POST /endpoints/<name>/invocations` with the raw payload as
// body, turned into an Invocation for the endpoint router, and the instance's answer turned
// back into the runtime's wire response.
//
// Request: the body goes to the instance as is (at most 6 MiB), with the headers the inference
// container contract forwards: Content-Type, Accept, X-Amzn-SageMaker-Custom-Attributes and
// X-Amzn-SageMaker-Inference-Id. X-Amzn-SageMaker-Target-Variant picks the variant.
// Response: a 2xx from the model is 200 with the model's body and Content-Type,
// x-Amzn-Invoked-Production-Variant and the model's custom attributes, if any.
//
// Errors (X-Amzn-ErrorType plus a JSON body with the shape's members, as botocore's rest-json
// parser reads them; mapped in one place, RuntimeErrorResponse in runtime_api.cc):
//   model answered 4xx/5xx             ModelError 424 (Message, OriginalStatusCode,
//                                      OriginalMessage, LogStreamArn)
//   no answer within the timeout       ModelError 424, SageMaker's "timed out" wording
//   connection cut after delivery      ModelError 424
//   unknown endpoint                   ValidationError 400 "Endpoint <n> of account <a> not found."
//   unknown target variant, bad header ValidationError 400
//   body over 6 MiB                    ValidationError 413
//   no instance took the request       ServiceUnavailable 503 (botocore retries it)
//
// Thread safety: immutable after construction; Handle may be called concurrently.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "common/ids.h"
#include "common/status.h"
#include "http/http_message.h"
#include "serving/endpoint_router.h"

namespace hearth::api {

// Sends an invocation to the endpoint's fleet: serving::EndpointRouter::Invoke, or a fake.
using InvokeFunction = std::function<Result<serving::InvocationResult>(const serving::Invocation&)>;

struct RuntimeApiOptions {
  AccountContext account;
  std::uint64_t max_body_bytes = 6291456;  // botocore's BodyBlob max
  // How long the model has to answer (SageMaker gives a container 60 s).
  std::chrono::milliseconds invocation_timeout{60000};
};

// True when `path` is one of the runtime API's, "/endpoints/<name>/<action>" with action
// "invocations", "async-invocations" or "invocations-response-stream"; fills the parts.
bool IsRuntimePath(std::string_view path, std::string* endpoint = nullptr,
                   std::string* action = nullptr);

class RuntimeApi {
 public:
  RuntimeApi(RuntimeApiOptions options, InvokeFunction invoke);

  // Refuses an over-size body from its Content-Length before it is read, when the client waits
  // for `100 Continue` or the body is very large; other over-size bodies are refused by Handle.
  std::optional<http::Response> Precheck(const http::Request& request) const;
  http::Response Handle(http::Request& request) const;

  // The two halves of Handle, for tests. ToInvocation fails with a Status whose reason is the
  // wire error code.
  Result<serving::Invocation> ToInvocation(const http::Request& request) const;
  http::Response ToResponse(const serving::Invocation& invocation,
                            const Result<serving::InvocationResult>& result,
                            const std::string& request_id) const;

 private:
  // ToInvocation without the payload.
  Status ToInvocationHead(const http::Request& request, serving::Invocation* invocation) const;
  // ToResponse, taking the result to move the model's answer out of it.
  http::Response Respond(const serving::Invocation& invocation,
                         Result<serving::InvocationResult> result,
                         const std::string& request_id) const;

  RuntimeApiOptions options_;
  InvokeFunction invoke_;
};

}  // namespace hearth::api
