#include "api/runtime_api.h"

#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "spdlog/spdlog.h"

namespace hearth::api {

namespace {

using nlohmann::json;

// The container every single-container variant runs, as SageMaker names it in its messages.
constexpr std::string_view kContainer = "primary";
constexpr std::string_view kNamePattern = "^[a-zA-Z0-9](-*[a-zA-Z0-9])*";
// An over-size body up to this size is read before it is refused (see Precheck).
constexpr std::uint64_t kReadToRefuseLimit = 64ULL << 20;

// rest-json errors: botocore takes the code from X-Amzn-ErrorType and the modeled members
// (and the message, "message" or "Message") from the JSON body.
http::Response WireError(int http_status, std::string_view code, const json& body,
                         const std::string& request_id) {
  http::Response r;
  r.status = http_status;
  // A model's answer quoted in a message need not be UTF-8: replace what is not.
  r.body = body.dump(-1, ' ', false, json::error_handler_t::replace);
  r.SetHeader("Content-Type", "application/json");
  r.SetHeader("x-amzn-RequestId", request_id);
  r.SetHeader("X-Amzn-ErrorType", code);
  return r;
}

// The runtime's one Status -> wire error map (the model's own failures are ModelErrors,
// built by ModelErrorResponse). A Status reason, when set, is the wire code.
http::Response RuntimeErrorResponse(const Status& status, const std::string& request_id) {
  int http_status = 500;
  std::string code = "InternalFailure";
  switch (status.code()) {
    case StatusCode::kInvalidArgument:
    case StatusCode::kNotFound:
    case StatusCode::kFailedPrecondition:
      http_status = 400;
      code = "ValidationError";
      break;
    case StatusCode::kResourceExhausted:  // the body is over the limit
      http_status = 413;
      code = "ValidationError";
      break;
    case StatusCode::kUnavailable:
      http_status = 503;
      code = "ServiceUnavailable";
      break;
    default:
      break;
  }
  if (!status.reason().empty()) code = status.reason();
  return WireError(http_status, code, json{{"Message", status.message()}}, request_id);
}

bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

// ^[a-zA-Z0-9](-*[a-zA-Z0-9])* matched against the whole value.
bool MatchesNamePattern(std::string_view s) {
  if (s.empty() || !IsNameChar(s.front()) || !IsNameChar(s.back())) return false;
  for (char c : s) {
    if (!IsNameChar(c) && c != '-') return false;
  }
  return true;
}

bool IsAscii(std::string_view s) {
  for (unsigned char c : s) {
    if (c > 0x7f) return false;
  }
  return true;
}

// \A\S[\p{Print}]*\z
bool IsPrintableId(std::string_view s) {
  if (s.empty() || s.front() == ' ') return false;
  for (unsigned char c : s) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

// Collects SageMaker-style validation errors over the request's members.
class Validation {
 public:
  void Check(bool ok, std::string_view member, std::string_view value, bool sensitive,
             std::string rule) {
    if (ok) return;
    std::string shown = sensitive ? "" : "'" + std::string(value) + "' ";
    errors_.push_back("Value " + shown + "at '" + std::string(member) +
                      "' failed to satisfy constraint: " + std::move(rule));
  }
  void MaxLength(std::string_view member, std::string_view value, std::size_t max,
                 bool sensitive = false) {
    Check(value.size() <= max, member, value, sensitive,
          "Member must have length less than or equal to " + std::to_string(max));
  }
  void Pattern(bool matches, std::string_view member, std::string_view value,
               std::string_view pattern, bool sensitive = false) {
    Check(matches, member, value, sensitive,
          "Member must satisfy regular expression pattern: " + std::string(pattern));
  }

  Status ToStatus() const {
    if (errors_.empty()) return Status::Ok();
    std::string message =
        std::to_string(errors_.size()) +
        (errors_.size() == 1 ? " validation error detected: " : " validation errors detected: ");
    for (std::size_t i = 0; i < errors_.size(); ++i) {
      if (i > 0) message += "; ";
      message += errors_[i];
    }
    return InvalidArgument(std::move(message));
  }

 private:
  std::vector<std::string> errors_;
};

}  // namespace

bool IsRuntimePath(std::string_view path, std::string* endpoint, std::string* action) {
  constexpr std::string_view kPrefix = "/endpoints/";
  if (path.substr(0, kPrefix.size()) != kPrefix) return false;
  path.remove_prefix(kPrefix.size());
  const std::size_t slash = path.find('/');
  if (slash == 0 || slash == std::string_view::npos) return false;
  const std::string_view verb = path.substr(slash + 1);
  if (verb != "invocations" && verb != "async-invocations" &&
      verb != "invocations-response-stream") {
    return false;
  }
  if (endpoint != nullptr) *endpoint = std::string(path.substr(0, slash));
  if (action != nullptr) *action = std::string(verb);
  return true;
}

RuntimeApi::RuntimeApi(RuntimeApiOptions options, InvokeFunction invoke)
    : options_(std::move(options)), invoke_(std::move(invoke)) {}

std::optional<http::Response> RuntimeApi::Precheck(const http::Request& request) const {
  auto length = request.headers.Get("content-length");
  if (!length) return std::nullopt;
  std::uint64_t size = 0;
  try {
    size = std::stoull(*length);
  } catch (const std::exception&) {
    return std::nullopt;  // the HTTP server judges malformed framing
  }
  if (size <= options_.max_body_bytes) return std::nullopt;
  // A refusal before the body closes the connection unread; a client that is not waiting for
  // `100 Continue` (boto3 here) is then still sending and sees a reset, not the error. So
  // only such a client is refused now; others are read and refused by Handle, unless the
  // body is so large that reading it is the greater harm.
  const bool waits = request.headers.GetOr("expect", "") == "100-continue";
  if (!waits && size <= kReadToRefuseLimit) return std::nullopt;
  return RuntimeErrorResponse(
      ResourceExhausted("Request " + request.request_id + " has oversize body."),
      request.request_id);
}

Result<serving::Invocation> RuntimeApi::ToInvocation(const http::Request& request) const {
  serving::Invocation inv;
  RETURN_IF_ERROR(ToInvocationHead(request, &inv));
  ASSIGN_OR_RETURN(inv.request.body, request.body.ReadAll());
  return inv;
}

Status RuntimeApi::ToInvocationHead(const http::Request& request, serving::Invocation* inv) const {
  std::string endpoint, action;
  if (!IsRuntimePath(request.path, &endpoint, &action)) {
    return InvalidArgument("not a runtime API path: " + request.path);
  }
  if (action != "invocations") {
    const char* op =
        action == "async-invocations" ? "InvokeEndpointAsync" : "InvokeEndpointWithResponseStream";
    return InvalidArgument(std::string(op) + " is not supported; endpoint " + endpoint +
                           " of account " + options_.account.account_id +
                           " answers InvokeEndpoint.");
  }
  if (request.body.size() > options_.max_body_bytes) {
    return ResourceExhausted("Request " + request.request_id + " has oversize body.");
  }

  // Pointers into the request's headers (nullptr: absent): nothing is copied until the
  // request is known to be valid.
  const std::string* content_type = request.headers.Find("content-type");
  const std::string* accept = request.headers.Find("accept");
  const std::string* custom = request.headers.Find("x-amzn-sagemaker-custom-attributes");
  const std::string* variant = request.headers.Find("x-amzn-sagemaker-target-variant");
  const std::string* inference_id = request.headers.Find("x-amzn-sagemaker-inference-id");
  const std::string_view type = content_type ? std::string_view(*content_type) : "";

  Validation v;
  v.MaxLength("endpointName", endpoint, 63);
  v.Pattern(MatchesNamePattern(endpoint), "endpointName", endpoint, kNamePattern);
  v.MaxLength("contentType", type, 1024);
  v.Pattern(IsAscii(type), "contentType", type, "\\p{ASCII}*");
  if (accept) {
    v.MaxLength("accept", *accept, 1024);
    v.Pattern(IsAscii(*accept), "accept", *accept, "\\p{ASCII}*");
  }
  if (custom) {
    v.MaxLength("customAttributes", *custom, 1024, /*sensitive=*/true);
    v.Pattern(IsAscii(*custom), "customAttributes", *custom, "\\p{ASCII}*", true);
  }
  if (variant && !variant->empty()) {
    v.MaxLength("targetVariant", *variant, 63);
    v.Pattern(MatchesNamePattern(*variant), "targetVariant", *variant, kNamePattern);
  }
  if (inference_id) {
    v.Check(!inference_id->empty(), "inferenceId", *inference_id, false,
            "Member must have length greater than or equal to 1");
    v.MaxLength("inferenceId", *inference_id, 64);
    v.Pattern(inference_id->empty() || IsPrintableId(*inference_id), "inferenceId", *inference_id,
              "\\A\\S[\\p{Print}]*\\z");
  }
  RETURN_IF_ERROR(v.ToStatus());
  if (request.headers.Has("x-amzn-sagemaker-target-model")) {
    return InvalidArgument("Endpoint " + endpoint +
                           " is not a multi-model endpoint and does not support target model "
                           "header.");
  }

  inv->endpoint = std::move(endpoint);
  if (variant) inv->target_variant = *variant;
  inv->timeout = options_.invocation_timeout;
  inv->request.method = "POST";
  inv->request.target = "/invocations";
  auto& headers = inv->request.headers;
  headers.reserve(4);
  if (!type.empty()) headers.emplace_back("Content-Type", type);
  if (accept) headers.emplace_back("Accept", *accept);
  if (custom) headers.emplace_back("X-Amzn-SageMaker-Custom-Attributes", *custom);
  if (inference_id) headers.emplace_back("X-Amzn-SageMaker-Inference-Id", *inference_id);
  return Status::Ok();
}

http::Response RuntimeApi::ToResponse(const serving::Invocation& invocation,
                                      const Result<serving::InvocationResult>& result,
                                      const std::string& request_id) const {
  return Respond(invocation, Result<serving::InvocationResult>(result), request_id);
}

http::Response RuntimeApi::Respond(const serving::Invocation& invocation,
                                   Result<serving::InvocationResult> result,
                                   const std::string& request_id) const {
  const AccountContext& account = options_.account;
  const std::string& endpoint = invocation.endpoint;

  // A ModelError names the container's status and answer, and where its logs are.
  auto model_error = [&](int original_status, const std::string& original_message) {
    const std::string log_group = "/aws/sagemaker/Endpoints/" + endpoint;
    const std::string message =
        std::string("Received ") +
        (original_status >= 400 && original_status < 500 ? "client" : "server") + " error (" +
        std::to_string(original_status) + ") from " + std::string(kContainer) + " with message \"" +
        original_message + "\". See https://" + account.region +
        ".console.aws.amazon.com/cloudwatch/home?region=" + account.region +
        "#logEventViewer:group=" + log_group + " in account " + account.account_id +
        " for more information.";
    return WireError(
        424, "ModelError",
        json{{"Message", message},
             {"OriginalStatusCode", original_status},
             {"OriginalMessage", original_message},
             {"LogStreamArn", "arn:" + account.partition + ":logs:" + account.region + ":" +
                                  account.account_id + ":log-group:" + log_group}},
        request_id);
  };

  if (!result.ok()) {
    const Status& s = result.status();
    if (s.code() != StatusCode::kNotFound && s.code() != StatusCode::kInvalidArgument) {
      // The client sees SageMaker's wording; the server's log keeps what happened.
      spdlog::warn("InvokeEndpoint {} ({}): {}", endpoint, request_id, s.ToString());
    }
    switch (s.code()) {
      case StatusCode::kNotFound:
        return RuntimeErrorResponse(
            NotFound("Endpoint " + endpoint + " of account " + account.account_id + " not found."),
            request_id);
      case StatusCode::kInvalidArgument:
        return RuntimeErrorResponse(
            InvalidArgument("Variant " + invocation.target_variant + " not found for endpoint " +
                            endpoint + " of account " + account.account_id + "."),
            request_id);
      case StatusCode::kDeadlineExceeded:
        return model_error(0,
                           "Your invocation timed out while waiting for a response from "
                           "container " +
                               std::string(kContainer) +
                               ". Review the latency metrics for each container in Amazon "
                               "CloudWatch, resolve the issue, and try again.");
      case StatusCode::kAborted:
        return model_error(0, "The connection to container " + std::string(kContainer) +
                                  " closed before a complete response was received.");
      case StatusCode::kUnavailable:
        return RuntimeErrorResponse(
            Unavailable("Endpoint " + endpoint + " of account " + account.account_id +
                        " has no instance able to take the request. Try again."),
            request_id);
      default:
        return RuntimeErrorResponse(s, request_id);
    }
  }

  http::ClientResponse& answer = result->response;
  if (answer.status < 200 || answer.status > 299) {
    return model_error(answer.status, answer.body);
  }
  http::Response r;
  r.status = 200;
  r.body = std::move(answer.body);
  r.headers.reserve(4);
  if (const std::string* type = answer.headers.Find("content-type")) {
    r.headers.emplace_back("Content-Type", *type);
  }
  r.headers.emplace_back("x-Amzn-Invoked-Production-Variant", result->variant);
  if (const std::string* custom = answer.headers.Find("x-amzn-sagemaker-custom-attributes")) {
    r.headers.emplace_back("X-Amzn-SageMaker-Custom-Attributes", *custom);
  }
  r.headers.emplace_back("x-amzn-RequestId", request_id);
  return r;
}

http::Response RuntimeApi::Handle(http::Request& request) const {
  // As ToInvocation, but the payload moves into the invocation and the model's answer into the
  // response: neither is copied on the way.
  serving::Invocation invocation;
  if (Status s = ToInvocationHead(request, &invocation); !s.ok()) {
    return RuntimeErrorResponse(s, request.request_id);
  }
  Result<std::string> body = std::move(request.body).ReadAll();
  if (!body.ok()) return RuntimeErrorResponse(body.status(), request.request_id);
  invocation.request.body = std::move(body).value();
  return Respond(invocation, invoke_(invocation), request.request_id);
}

}  // namespace hearth::api
