#include "api/runtime_api.h"

#include <optional>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace hearth::api {
namespace {

using nlohmann::json;
using serving::Invocation;
using serving::InvocationResult;

constexpr char kLogUrl[] =
    "https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1"
    "#logEventViewer:group=/aws/sagemaker/Endpoints/my-ep";

http::Request Post(std::string path, std::string body,
                   std::vector<std::pair<std::string, std::string>> headers = {}) {
  http::Request r;
  r.method = "POST";
  r.path = r.target = r.raw_path = std::move(path);
  r.request_id = "req-1";
  for (const auto& [k, v] : headers) r.headers.Add(k, v);
  r.body = http::RequestBody::InMemory(std::move(body));
  return r;
}

std::string Header(const http::Response& r, std::string_view name) {
  for (const auto& [k, v] : r.headers) {
    if (strcasecmp(k.c_str(), std::string(name).c_str()) == 0) return v;
  }
  return "<none>";
}

// A fleet that answers with a fixed result and records what it was asked.
class RuntimeApiTest : public ::testing::Test {
 protected:
  RuntimeApiTest()
      : api_({}, [this](const Invocation& inv) -> Result<InvocationResult> {
          ++calls_;
          seen_ = inv;
          return answer_;
        }) {}

  void Answer(int status, std::string body,
              std::vector<std::pair<std::string, std::string>> headers = {}) {
    InvocationResult r{
        .variant = "AllTraffic", .instance_id = "my-ep/AllTraffic/0", .response = {}};
    r.response.status = status;
    r.response.body = std::move(body);
    for (const auto& [k, v] : headers) r.response.headers.Add(k, v);
    answer_ = std::move(r);
  }

  http::Response Invoke(std::string body = "1,2,3",
                        std::vector<std::pair<std::string, std::string>> headers = {
                            {"Content-Type", "text/csv"}}) {
    http::Request request = Post("/endpoints/my-ep/invocations", std::move(body), headers);
    return api_.Handle(request);
  }

  RuntimeApi api_;
  Result<InvocationResult> answer_ = Internal("no answer set");
  std::optional<Invocation> seen_;
  int calls_ = 0;
};

TEST_F(RuntimeApiTest, ForwardsThePayloadAndTheContractHeadersToTheInstance) {
  Answer(200, "0.5\n");
  http::Response r = Invoke("1,2,3", {{"Content-Type", "text/csv"},
                                      {"Accept", "application/json"},
                                      {"X-Amzn-SageMaker-Custom-Attributes", "trace=7"},
                                      {"X-Amzn-SageMaker-Target-Variant", "Blue"},
                                      {"X-Amzn-SageMaker-Inference-Id", "inf-1"},
                                      {"X-Unlisted", "dropped"}});
  ASSERT_TRUE(seen_.has_value());
  EXPECT_EQ(seen_->endpoint, "my-ep");
  EXPECT_EQ(seen_->target_variant, "Blue");
  EXPECT_EQ(seen_->timeout, std::chrono::milliseconds(60000));
  EXPECT_EQ(seen_->request.method, "POST");
  EXPECT_EQ(seen_->request.target, "/invocations");
  EXPECT_EQ(seen_->request.body, "1,2,3");
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"Content-Type", "text/csv"},
      {"Accept", "application/json"},
      {"X-Amzn-SageMaker-Custom-Attributes", "trace=7"},
      {"X-Amzn-SageMaker-Inference-Id", "inf-1"}};
  EXPECT_EQ(seen_->request.headers, expected);
  EXPECT_EQ(r.status, 200);
}

TEST_F(RuntimeApiTest, AModelAnswerIs200WithItsBodyTypeVariantAndAttributes) {
  Answer(200, "[0.25]",
         {{"Content-Type", "application/json"}, {"X-Amzn-SageMaker-Custom-Attributes", "seen=1"}});
  http::Response r = Invoke();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "[0.25]");
  EXPECT_EQ(Header(r, "Content-Type"), "application/json");
  EXPECT_EQ(Header(r, "x-Amzn-Invoked-Production-Variant"), "AllTraffic");
  EXPECT_EQ(Header(r, "X-Amzn-SageMaker-Custom-Attributes"), "seen=1");
  EXPECT_EQ(Header(r, "x-amzn-RequestId"), "req-1");
  EXPECT_EQ(Header(r, "X-Amzn-ErrorType"), "<none>");

  Answer(204, "");
  r = Invoke();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "");
  EXPECT_EQ(Header(r, "X-Amzn-SageMaker-Custom-Attributes"), "<none>");
}

TEST_F(RuntimeApiTest, AModelClientErrorIsModelError424WithTheOriginal) {
  Answer(415, "unsupported content type text/plain");
  http::Response r = Invoke();
  EXPECT_EQ(r.status, 424);
  EXPECT_EQ(Header(r, "X-Amzn-ErrorType"), "ModelError");
  EXPECT_EQ(json::parse(r.body),
            (json{{"Message", std::string("Received client error (415) from primary with message "
                                          "\"unsupported content type text/plain\". See ") +
                                  kLogUrl + " in account 000000000000 for more information."},
                  {"OriginalStatusCode", 415},
                  {"OriginalMessage", "unsupported content type text/plain"},
                  {"LogStreamArn",
                   "arn:aws:logs:us-east-1:000000000000:log-group:/aws/sagemaker/Endpoints/"
                   "my-ep"}}));
}

TEST_F(RuntimeApiTest, AModelServerErrorSaysServerError) {
  Answer(500, "boom");
  http::Response r = Invoke();
  EXPECT_EQ(r.status, 424);
  json body = json::parse(r.body);
  EXPECT_EQ(body["Message"].get<std::string>().rfind(
                "Received server error (500) from primary with message \"boom\". See ", 0),
            0u);
  EXPECT_EQ(body["OriginalStatusCode"], 500);
}

TEST_F(RuntimeApiTest, AModelAnswerThatIsNotUtf8StillMakesAJsonError) {
  Answer(400, std::string("bad \xff\xfe bytes"));
  http::Response r = Invoke();
  EXPECT_EQ(r.status, 424);
  EXPECT_TRUE(json::accept(r.body)) << r.body;
}

TEST_F(RuntimeApiTest, AnUnknownEndpointIsValidationError) {
  answer_ = NotFound("no fleet for endpoint my-ep");
  http::Response r = Invoke();
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(Header(r, "X-Amzn-ErrorType"), "ValidationError");
  EXPECT_EQ(json::parse(r.body)["Message"], "Endpoint my-ep of account 000000000000 not found.");
}

TEST_F(RuntimeApiTest, AnUnknownTargetVariantIsValidationErrorNamingIt) {
  answer_ = InvalidArgument("endpoint my-ep has no variant Green");
  http::Response r = Invoke("1", {{"X-Amzn-SageMaker-Target-Variant", "Green"}});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(Header(r, "X-Amzn-ErrorType"), "ValidationError");
  EXPECT_NE(json::parse(r.body)["Message"].get<std::string>().find("Variant Green"),
            std::string::npos);
}

TEST_F(RuntimeApiTest, NoInstanceTakingTheRequestIsServiceUnavailable) {
  answer_ = Unavailable("no instance of variant AllTraffic accepted the request");
  http::Response r = Invoke();
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(Header(r, "X-Amzn-ErrorType"), "ServiceUnavailable");
  EXPECT_FALSE(json::parse(r.body)["Message"].get<std::string>().empty());
}

TEST_F(RuntimeApiTest, ATimeoutIsModelErrorWithSageMakersWording) {
  answer_ = Status(StatusCode::kDeadlineExceeded, "no response within 60000 ms");
  http::Response r = Invoke();
  EXPECT_EQ(r.status, 424);
  EXPECT_EQ(Header(r, "X-Amzn-ErrorType"), "ModelError");
  EXPECT_EQ(json::parse(r.body)["Message"],
            std::string("Received server error (0) from primary with message \"Your invocation "
                        "timed out while waiting for a response from container primary. Review "
                        "the latency metrics for each container in Amazon CloudWatch, resolve "
                        "the issue, and try again.\". See ") +
                kLogUrl + " in account 000000000000 for more information.");
}

TEST_F(RuntimeApiTest, ACutConnectionIsModelError) {
  answer_ = Status(StatusCode::kAborted, "connection broke");
  http::Response r = Invoke();
  EXPECT_EQ(r.status, 424);
  EXPECT_EQ(Header(r, "X-Amzn-ErrorType"), "ModelError");
  json body = json::parse(r.body);
  EXPECT_EQ(body["OriginalStatusCode"], 0);
  EXPECT_NE(body["Message"].get<std::string>().find("closed before a complete response"),
            std::string::npos);
}

TEST_F(RuntimeApiTest, ABodyOverSixMebibytesIsRefusedWithoutCallingTheModel) {
  Answer(200, "ok");
  http::Response r = Invoke(std::string(6291457, 'x'));
  EXPECT_EQ(r.status, 413);
  EXPECT_EQ(Header(r, "X-Amzn-ErrorType"), "ValidationError");
  EXPECT_EQ(json::parse(r.body)["Message"], "Request req-1 has oversize body.");
  EXPECT_EQ(calls_, 0);

  EXPECT_EQ(Invoke(std::string(6291456, 'x')).status, 200);
  EXPECT_EQ(calls_, 1);
}

TEST_F(RuntimeApiTest, PrecheckRefusesAnOversizeBodyUnreadOnlyWhenTheClientWaitsOrItIsHuge) {
  http::Request waits = Post("/endpoints/my-ep/invocations", "",
                             {{"Content-Length", "6291457"}, {"Expect", "100-continue"}});
  auto refusal = api_.Precheck(waits);
  ASSERT_TRUE(refusal.has_value());
  EXPECT_EQ(refusal->status, 413);
  EXPECT_EQ(Header(*refusal, "X-Amzn-ErrorType"), "ValidationError");
  // A client already sending would see the connection cut: Handle refuses it once read.
  http::Request sending = Post("/endpoints/my-ep/invocations", "", {{"Content-Length", "6291457"}});
  EXPECT_FALSE(api_.Precheck(sending).has_value());
  http::Request huge = Post("/endpoints/my-ep/invocations", "", {{"Content-Length", "1000000000"}});
  EXPECT_TRUE(api_.Precheck(huge).has_value());
  http::Request fits = Post("/endpoints/my-ep/invocations", "",
                            {{"Content-Length", "6291456"}, {"Expect", "100-continue"}});
  EXPECT_FALSE(api_.Precheck(fits).has_value());
}

TEST_F(RuntimeApiTest, BadNamesAndHeadersAreValidationErrorsInSageMakersFormat) {
  Answer(200, "ok");
  http::Request request = Post("/endpoints/my_ep/invocations", "1");
  http::Response r = api_.Handle(request);
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(Header(r, "X-Amzn-ErrorType"), "ValidationError");
  EXPECT_EQ(json::parse(r.body)["Message"],
            "1 validation error detected: Value 'my_ep' at 'endpointName' failed to satisfy "
            "constraint: Member must satisfy regular expression pattern: "
            "^[a-zA-Z0-9](-*[a-zA-Z0-9])*");

  r = Invoke("1", {{"X-Amzn-SageMaker-Inference-Id", std::string(65, 'i')},
                   {"X-Amzn-SageMaker-Custom-Attributes", std::string(1025, 'c')}});
  EXPECT_EQ(r.status, 400);
  const std::string message = json::parse(r.body)["Message"];
  EXPECT_EQ(message.rfind("2 validation errors detected: ", 0), 0u) << message;
  EXPECT_NE(message.find("Value at 'customAttributes'"), std::string::npos) << message;  // hidden
  EXPECT_NE(message.find("at 'inferenceId' failed to satisfy constraint: Member must have "
                         "length less than or equal to 64"),
            std::string::npos)
      << message;

  r = Invoke("1", {{"X-Amzn-SageMaker-Target-Model", "model.tar.gz"}});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(json::parse(r.body)["Message"],
            "Endpoint my-ep is not a multi-model endpoint and does not support target model "
            "header.");
  EXPECT_EQ(calls_, 0);
}

TEST_F(RuntimeApiTest, RecognisesTheRuntimePaths) {
  std::string endpoint, action;
  EXPECT_TRUE(IsRuntimePath("/endpoints/e1/invocations", &endpoint, &action));
  EXPECT_EQ(endpoint, "e1");
  EXPECT_EQ(action, "invocations");
  EXPECT_TRUE(IsRuntimePath("/endpoints/e1/async-invocations"));
  EXPECT_TRUE(IsRuntimePath("/endpoints/e1/invocations-response-stream"));
  EXPECT_FALSE(IsRuntimePath("/endpoints/e1/other"));
  EXPECT_FALSE(IsRuntimePath("/endpoints//invocations"));
  EXPECT_FALSE(IsRuntimePath("/endpoints/invocations"));
  EXPECT_FALSE(IsRuntimePath("/bucket/endpoints/e1/invocations"));

  http::Request async = Post("/endpoints/my-ep/async-invocations", "");
  http::Response r = api_.Handle(async);
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(Header(r, "X-Amzn-ErrorType"), "ValidationError");
  EXPECT_EQ(calls_, 0);
}

}  // namespace
}  // namespace hearth::api
