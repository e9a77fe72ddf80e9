#include "api/logs_api.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "metadata/sqlite_metadata_store.h"

namespace hearth::api {
namespace {

using nlohmann::json;

constexpr char kGroup[] = "/aws/sagemaker/TrainingJobs";

class LogsApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = metadata::OpenSqliteLogStore({.path = ":memory:"});
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    store_ = std::move(opened).value();
  }

  void AppendLines(const std::string& stream, std::int64_t first_ts, int count,
                   const std::string& tag) {
    std::vector<metadata::LogEvent> events;
    for (int i = 0; i < count; ++i) {
      metadata::LogEvent e;
      e.timestamp_millis = first_ts + i;
      e.message = tag + "-" + std::to_string(i);
      events.push_back(e);
    }
    ASSERT_TRUE(store_->Append(kGroup, stream, events).ok());
  }

  json Call(std::string_view op, const json& input) {
    auto out = HandleLogsOperation(*store_, op, input);
    EXPECT_TRUE(out.ok()) << out.status().ToString();
    return out.ok() ? *out : json();
  }

  Status Fail(std::string_view op, const json& input) {
    auto out = HandleLogsOperation(*store_, op, input);
    EXPECT_FALSE(out.ok()) << out->dump();
    return out.status();
  }

  static std::vector<std::string> Messages(const json& response) {
    std::vector<std::string> out;
    for (const auto& e : response["events"]) out.push_back(e["message"].get<std::string>());
    return out;
  }

  std::unique_ptr<metadata::LogStore> store_;
};

// ---- GetLogEvents ----

TEST_F(LogsApiTest, GetLogEventsPagesForwardAndRepeatsTheTokenAtTheEnd) {
  AppendLines("j/algo-1", 100, 5, "e");
  json page = Call("GetLogEvents", {{"logGroupName", kGroup},
                                    {"logStreamName", "j/algo-1"},
                                    {"startFromHead", true},
                                    {"limit", 2}});
  EXPECT_EQ(Messages(page), (std::vector<std::string>{"e-0", "e-1"}));
  EXPECT_EQ(page["events"][0]["timestamp"], 100);
  EXPECT_TRUE(page["events"][0]["ingestionTime"].is_number_integer());

  std::vector<std::string> rest;
  std::string token = page["nextForwardToken"];
  for (int i = 0; i < 5; ++i) {
    json next = Call("GetLogEvents", {{"logGroupName", kGroup},
                                      {"logStreamName", "j/algo-1"},
                                      {"nextToken", token},
                                      {"limit", 2}});
    for (const auto& m : Messages(next)) rest.push_back(m);
    if (next["nextForwardToken"] == token) {
      EXPECT_TRUE(next["events"].empty());
      break;
    }
    token = next["nextForwardToken"];
  }
  EXPECT_EQ(rest, (std::vector<std::string>{"e-2", "e-3", "e-4"}));

  // Polling with the end token later picks up what was appended since.
  AppendLines("j/algo-1", 200, 1, "late");
  json polled =
      Call("GetLogEvents",
           {{"logGroupName", kGroup}, {"logStreamName", "j/algo-1"}, {"nextToken", token}});
  EXPECT_EQ(Messages(polled), (std::vector<std::string>{"late-0"}));
}

// The loop of sagemaker.logs.log_stream: startFromHead, follow nextForwardToken, stop on an
// empty page.
TEST_F(LogsApiTest, TheSageMakerSdkReadLoopSeesEveryEventOnceAndStops) {
  AppendLines("j/algo-1", 0, 25, "e");
  std::vector<std::string> seen;
  std::optional<std::string> token;
  int calls = 0;
  while (calls++ < 50) {
    json input = {{"logGroupName", kGroup},
                  {"logStreamName", "j/algo-1"},
                  {"startTime", 0},
                  {"startFromHead", true},
                  {"limit", 10}};
    if (token) input["nextToken"] = *token;
    json page = Call("GetLogEvents", input);
    token = page["nextForwardToken"].get<std::string>();
    if (page["events"].empty()) break;
    for (const auto& m : Messages(page)) seen.push_back(m);
  }
  EXPECT_EQ(seen.size(), 25u);
  EXPECT_EQ(seen.front(), "e-0");
  EXPECT_EQ(seen.back(), "e-24");
  EXPECT_EQ(calls, 4);
}

TEST_F(LogsApiTest, GetLogEventsReadsTheTailByDefaultAndPagesBackward) {
  AppendLines("s", 0, 6, "e");
  json tail =
      Call("GetLogEvents", {{"logGroupName", kGroup}, {"logStreamName", "s"}, {"limit", 2}});
  EXPECT_EQ(Messages(tail), (std::vector<std::string>{"e-4", "e-5"}));

  json older = Call("GetLogEvents", {{"logGroupName", kGroup},
                                     {"logStreamName", "s"},
                                     {"nextToken", tail["nextBackwardToken"]},
                                     {"limit", 2}});
  EXPECT_EQ(Messages(older), (std::vector<std::string>{"e-2", "e-3"}));
  json oldest = Call("GetLogEvents", {{"logGroupName", kGroup},
                                      {"logStreamName", "s"},
                                      {"nextToken", older["nextBackwardToken"]},
                                      {"limit", 5}});
  EXPECT_EQ(Messages(oldest), (std::vector<std::string>{"e-0", "e-1"}));
  json none = Call("GetLogEvents", {{"logGroupName", kGroup},
                                    {"logStreamName", "s"},
                                    {"nextToken", oldest["nextBackwardToken"]}});
  EXPECT_TRUE(none["events"].empty());
  EXPECT_EQ(none["nextBackwardToken"], oldest["nextBackwardToken"]);
  // Forward from the start of the stream again.
  json again = Call("GetLogEvents", {{"logGroupName", kGroup},
                                     {"logStreamName", "s"},
                                     {"nextToken", none["nextForwardToken"]},
                                     {"limit", 1}});
  EXPECT_EQ(Messages(again), (std::vector<std::string>{"e-0"}));
}

TEST_F(LogsApiTest, GetLogEventsKeepsStartTimeInclusiveAndEndTimeExclusive) {
  AppendLines("s", 1000, 10, "e");
  json page = Call("GetLogEvents", {{"logGroupName", kGroup},
                                    {"logStreamName", "s"},
                                    {"startTime", 1003},
                                    {"endTime", 1006},
                                    {"startFromHead", true}});
  EXPECT_EQ(Messages(page), (std::vector<std::string>{"e-3", "e-4", "e-5"}));
}

TEST_F(LogsApiTest, GetLogEventsOnAnEmptyStreamStillHandsOutTokens) {
  ASSERT_TRUE(store_->EnsureStream(kGroup, "s").ok());
  json page = Call("GetLogEvents", {{"logGroupName", kGroup}, {"logStreamName", "s"}});
  EXPECT_TRUE(page["events"].empty());
  ASSERT_TRUE(page["nextForwardToken"].is_string());
  AppendLines("s", 0, 1, "first");
  json later = Call(
      "GetLogEvents",
      {{"logGroupName", kGroup}, {"logStreamName", "s"}, {"nextToken", page["nextForwardToken"]}});
  EXPECT_EQ(Messages(later), (std::vector<std::string>{"first-0"}));
}

TEST_F(LogsApiTest, GetLogEventsOfAnUnknownGroupOrStreamIsResourceNotFound) {
  ASSERT_TRUE(store_->EnsureStream(kGroup, "s").ok());
  Status no_stream = Fail("GetLogEvents", {{"logGroupName", kGroup}, {"logStreamName", "x"}});
  EXPECT_EQ(no_stream.code(), StatusCode::kNotFound);
  EXPECT_EQ(no_stream.reason(), "ResourceNotFoundException");
  Status no_group = Fail("GetLogEvents", {{"logGroupName", "/nope"}, {"logStreamName", "s"}});
  EXPECT_EQ(no_group.reason(), "ResourceNotFoundException");
  EXPECT_NE(no_group.message().find("log group"), std::string::npos);
}

TEST_F(LogsApiTest, GetLogEventsValidatesItsFields) {
  ASSERT_TRUE(store_->EnsureStream(kGroup, "s").ok());
  struct Case {
    json input;
    std::string field;
  };
  const std::vector<Case> cases = {
      {{{"logGroupName", kGroup}}, "logStreamName"},
      {{{"logStreamName", "s"}}, "logGroupName"},
      {{{"logGroupName", kGroup}, {"logStreamName", "s"}, {"limit", 0}}, "limit"},
      {{{"logGroupName", kGroup}, {"logStreamName", "s"}, {"limit", 10001}}, "limit"},
      {{{"logGroupName", kGroup}, {"logStreamName", "s"}, {"limit", "5"}}, "limit"},
      {{{"logGroupName", kGroup}, {"logStreamName", "s"}, {"startTime", -1}}, "startTime"},
      {{{"logGroupName", kGroup}, {"logStreamName", "s"}, {"endTime", 1.5}}, "endTime"},
      {{{"logGroupName", kGroup}, {"logStreamName", "s"}, {"startFromHead", "yes"}},
       "startFromHead"},
      {{{"logGroupName", kGroup}, {"logStreamName", "s"}, {"nextToken", "garbage"}}, "nextToken"},
      {{{"logGroupName", "bad name!"}, {"logStreamName", "s"}}, "logGroupName"},
      {{{"logGroupName", kGroup}, {"logStreamName", "a:b"}}, "logStreamName"},
  };
  for (const auto& c : cases) {
    Status status = Fail("GetLogEvents", c.input);
    EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << c.input.dump();
    EXPECT_EQ(status.reason(), "InvalidParameterException") << c.input.dump();
    EXPECT_NE(status.message().find(c.field), std::string::npos)
        << c.input.dump() << " -> " << status.message();
  }
}

TEST_F(LogsApiTest, GetLogEventsAcceptsALogGroupArnAsIdentifier) {
  AppendLines("s", 0, 1, "e");
  json page = Call("GetLogEvents",
                   {{"logGroupIdentifier",
                     "arn:aws:logs:us-east-1:000000000000:log-group:/aws/sagemaker/TrainingJobs:*"},
                    {"logStreamName", "s"}});
  EXPECT_EQ(Messages(page), (std::vector<std::string>{"e-0"}));
}

TEST_F(LogsApiTest, MessagesThatAreNotUtf8ComeBackAsValidJson) {
  metadata::LogEvent e;
  e.timestamp_millis = 1;
  e.message = std::string("ok \xff\xfe bytes \xe2\x82", 15);
  ASSERT_TRUE(store_->Append(kGroup, "s", {e}).ok());
  json page = Call("GetLogEvents", {{"logGroupName", kGroup}, {"logStreamName", "s"}});
  EXPECT_NO_THROW(page.dump());
  EXPECT_EQ(page["events"][0]["message"].get<std::string>().rfind("ok ", 0), 0u);
}

// ---- DescribeLogGroups / DescribeLogStreams ----

TEST_F(LogsApiTest, DescribeLogGroupsFiltersByPrefixAndPages) {
  for (const char* g : {"/aws/sagemaker/TrainingJobs", "/aws/sagemaker/Endpoints/e1", "/other"}) {
    ASSERT_TRUE(store_->EnsureStream(g, "s").ok());
  }
  json first = Call("DescribeLogGroups", {{"logGroupNamePrefix", "/aws/"}, {"limit", 1}});
  ASSERT_EQ(first["logGroups"].size(), 1u);
  EXPECT_EQ(first["logGroups"][0]["logGroupName"], "/aws/sagemaker/Endpoints/e1");
  EXPECT_EQ(first["logGroups"][0]["arn"],
            "arn:aws:logs:us-east-1:000000000000:log-group:/aws/sagemaker/Endpoints/e1:*");
  ASSERT_TRUE(first.contains("nextToken"));
  json second =
      Call("DescribeLogGroups",
           {{"logGroupNamePrefix", "/aws/"}, {"limit", 1}, {"nextToken", first["nextToken"]}});
  ASSERT_EQ(second["logGroups"].size(), 1u);
  EXPECT_EQ(second["logGroups"][0]["logGroupName"], "/aws/sagemaker/TrainingJobs");
  EXPECT_FALSE(second.contains("nextToken"));

  EXPECT_EQ(Call("DescribeLogGroups", json())["logGroups"].size(), 3u);
  EXPECT_EQ(Call("DescribeLogGroups", {{"logGroupNamePattern", "ENDPOINTS"}})["logGroups"].size(),
            1u);
  EXPECT_EQ(Fail("DescribeLogGroups", {{"limit", 51}}).reason(), "InvalidParameterException");
}

TEST_F(LogsApiTest, DescribeLogStreamsOrdersByNameOrLastEventTime) {
  AppendLines("j/algo-2", 500, 1, "x");
  AppendLines("j/algo-1", 900, 2, "x");
  ASSERT_TRUE(store_->EnsureStream(kGroup, "k/algo-1").ok());

  json by_name =
      Call("DescribeLogStreams", {{"logGroupName", kGroup}, {"logStreamNamePrefix", "j/"}});
  ASSERT_EQ(by_name["logStreams"].size(), 2u);
  const json& s = by_name["logStreams"][0];
  EXPECT_EQ(s["logStreamName"], "j/algo-1");
  EXPECT_EQ(s["firstEventTimestamp"], 900);
  EXPECT_EQ(s["lastEventTimestamp"], 901);
  EXPECT_EQ(s["storedBytes"], 6);
  EXPECT_TRUE(s["lastIngestionTime"].is_number_integer());
  EXPECT_EQ(s["arn"],
            "arn:aws:logs:us-east-1:000000000000:log-group:/aws/sagemaker/TrainingJobs:"
            "log-stream:j/algo-1");

  json by_time =
      Call("DescribeLogStreams",
           {{"logGroupName", kGroup}, {"orderBy", "LastEventTime"}, {"descending", true}});
  ASSERT_EQ(by_time["logStreams"].size(), 3u);
  EXPECT_EQ(by_time["logStreams"][0]["logStreamName"], "j/algo-1");
  EXPECT_EQ(by_time["logStreams"][1]["logStreamName"], "j/algo-2");
  EXPECT_EQ(by_time["logStreams"][2]["logStreamName"], "k/algo-1");
  EXPECT_FALSE(by_time["logStreams"][2].contains("firstEventTimestamp"));
}

TEST_F(LogsApiTest, DescribeLogStreamsPagesWithNextToken) {
  for (int i = 0; i < 5; ++i)
    ASSERT_TRUE(store_->EnsureStream(kGroup, "s" + std::to_string(i)).ok());
  std::vector<std::string> names;
  json input = {{"logGroupName", kGroup}, {"limit", 2}};
  for (int i = 0; i < 5; ++i) {
    json page = Call("DescribeLogStreams", input);
    for (const auto& s : page["logStreams"]) names.push_back(s["logStreamName"]);
    if (!page.contains("nextToken")) break;
    input["nextToken"] = page["nextToken"];
  }
  EXPECT_EQ(names, (std::vector<std::string>{"s0", "s1", "s2", "s3", "s4"}));
}

TEST_F(LogsApiTest, DescribeLogStreamsRejectsBadInputAndUnknownGroups) {
  ASSERT_TRUE(store_->EnsureStream(kGroup, "s").ok());
  Status unknown = Fail("DescribeLogStreams", {{"logGroupName", "/nope"}});
  EXPECT_EQ(unknown.code(), StatusCode::kNotFound);
  EXPECT_EQ(unknown.reason(), "ResourceNotFoundException");

  Status order =
      Fail("DescribeLogStreams",
           {{"logGroupName", kGroup}, {"orderBy", "LastEventTime"}, {"logStreamNamePrefix", "s"}});
  EXPECT_EQ(order.reason(), "InvalidParameterException");
  EXPECT_NE(order.message().find("logStreamNamePrefix"), std::string::npos);
  Status limit = Fail("DescribeLogStreams", {{"logGroupName", kGroup}, {"limit", 51}});
  EXPECT_NE(limit.message().find("'limit'"), std::string::npos);
  Status enum_value = Fail("DescribeLogStreams", {{"logGroupName", kGroup}, {"orderBy", "Size"}});
  EXPECT_NE(enum_value.message().find("orderBy"), std::string::npos);
  Status token = Fail("DescribeLogStreams", {{"logGroupName", kGroup}, {"nextToken", "zzz"}});
  EXPECT_NE(token.message().find("nextToken"), std::string::npos);
}

// ---- FilterLogEvents ----

TEST_F(LogsApiTest, FilterLogEventsInterleavesStreamsAndPagesUntilDone) {
  AppendLines("j/algo-2", 10, 3, "b");  // 10, 11, 12
  AppendLines("j/algo-1", 0, 3, "a");   // 0, 1, 2
  json first = Call("FilterLogEvents", {{"logGroupName", kGroup}, {"limit", 4}});
  EXPECT_EQ(Messages(first), (std::vector<std::string>{"a-0", "a-1", "a-2", "b-0"}));
  EXPECT_EQ(first["events"][0]["logStreamName"], "j/algo-1");
  EXPECT_EQ(first["events"][3]["logStreamName"], "j/algo-2");
  EXPECT_TRUE(first["events"][0]["eventId"].is_string());
  EXPECT_EQ(first["searchedLogStreams"].size(), 2u);
  ASSERT_TRUE(first.contains("nextToken"));

  json second = Call("FilterLogEvents",
                     {{"logGroupName", kGroup}, {"limit", 4}, {"nextToken", first["nextToken"]}});
  EXPECT_EQ(Messages(second), (std::vector<std::string>{"b-1", "b-2"}));
  EXPECT_FALSE(second.contains("nextToken"));

  json exact = Call("FilterLogEvents", {{"logGroupName", kGroup}, {"limit", 6}});
  EXPECT_EQ(exact["events"].size(), 6u);
  EXPECT_FALSE(exact.contains("nextToken"));
}

TEST_F(LogsApiTest, FilterLogEventsNarrowsByStreamsAndTime) {
  AppendLines("j/algo-1", 0, 3, "a");
  AppendLines("j/algo-2", 0, 3, "b");
  AppendLines("k/algo-1", 0, 3, "c");
  json named = Call(
      "FilterLogEvents",
      {{"logGroupName", kGroup}, {"logStreamNames", json::array({"k/algo-1"})}, {"startTime", 1}});
  EXPECT_EQ(Messages(named), (std::vector<std::string>{"c-1", "c-2"}));
  ASSERT_EQ(named["searchedLogStreams"].size(), 1u);
  EXPECT_EQ(named["searchedLogStreams"][0]["logStreamName"], "k/algo-1");

  json prefixed = Call("FilterLogEvents",
                       {{"logGroupName", kGroup}, {"logStreamNamePrefix", "j/"}, {"endTime", 1}});
  EXPECT_EQ(Messages(prefixed), (std::vector<std::string>{"a-0", "b-0"}));

  Status both = Fail("FilterLogEvents", {{"logGroupName", kGroup},
                                         {"logStreamNames", json::array({"a"})},
                                         {"logStreamNamePrefix", "j/"}});
  EXPECT_EQ(both.reason(), "InvalidParameterException");
}

TEST_F(LogsApiTest, FilterLogEventsMatchesTermsPhrasesAlternativesAndExclusions) {
  std::vector<metadata::LogEvent> events;
  const std::vector<std::string> lines = {"[0] train-loss: 0.5 epoch 1", "[1] ERROR disk full",
                                          "[2] WARN slow epoch", "[3] train-loss: 0.4 epoch 2",
                                          "[4] error lowercase"};
  for (std::size_t i = 0; i < lines.size(); ++i) {
    metadata::LogEvent e;
    e.timestamp_millis = static_cast<std::int64_t>(i);
    e.message = lines[i];
    events.push_back(e);
  }
  ASSERT_TRUE(store_->Append(kGroup, "s", events).ok());
  auto filter = [&](const std::string& pattern, int limit = 100) {
    return Messages(Call("FilterLogEvents",
                         {{"logGroupName", kGroup}, {"filterPattern", pattern}, {"limit", limit}}));
  };
  EXPECT_EQ(filter("").size(), 5u);
  EXPECT_EQ(filter("ERROR"), (std::vector<std::string>{"[1] ERROR disk full"}));
  EXPECT_EQ(filter("train-loss epoch"), (std::vector<std::string>{"[0] train-loss: 0.5 epoch 1",
                                                                  "[3] train-loss: 0.4 epoch 2"}));
  EXPECT_EQ(filter("\"0.4 epoch\""), (std::vector<std::string>{"[3] train-loss: 0.4 epoch 2"}));
  EXPECT_EQ(filter("?ERROR ?WARN"),
            (std::vector<std::string>{"[1] ERROR disk full", "[2] WARN slow epoch"}));
  EXPECT_EQ(filter("epoch -WARN"), (std::vector<std::string>{"[0] train-loss: 0.5 epoch 1",
                                                             "[3] train-loss: 0.4 epoch 2"}));

  // Paging still works when matching happens after the store's scan.
  json first = Call("FilterLogEvents",
                    {{"logGroupName", kGroup}, {"filterPattern", "epoch -WARN"}, {"limit", 1}});
  ASSERT_TRUE(first.contains("nextToken"));
  json second = Call("FilterLogEvents", {{"logGroupName", kGroup},
                                         {"filterPattern", "epoch -WARN"},
                                         {"limit", 1},
                                         {"nextToken", first["nextToken"]}});
  EXPECT_EQ(Messages(second), (std::vector<std::string>{"[3] train-loss: 0.4 epoch 2"}));
  EXPECT_FALSE(second.contains("nextToken"));

  EXPECT_EQ(Fail("FilterLogEvents", {{"logGroupName", kGroup}, {"filterPattern", "{ $.x = 1 }"}})
                .reason(),
            "InvalidParameterException");
  EXPECT_EQ(
      Fail("FilterLogEvents", {{"logGroupName", kGroup}, {"filterPattern", "\"open"}}).reason(),
      "InvalidParameterException");
}

TEST_F(LogsApiTest, FilterLogEventsOfAnUnknownGroupIsResourceNotFound) {
  Status status = Fail("FilterLogEvents", {{"logGroupName", "/nope"}});
  EXPECT_EQ(status.code(), StatusCode::kNotFound);
  EXPECT_EQ(status.reason(), "ResourceNotFoundException");
}

TEST_F(LogsApiTest, FilterLogEventsRejectsAForeignToken) {
  ASSERT_TRUE(store_->EnsureStream(kGroup, "s").ok());
  EXPECT_EQ(Fail("FilterLogEvents", {{"logGroupName", kGroup}, {"nextToken", "e/999"}}).reason(),
            "InvalidParameterException");
  EXPECT_EQ(Fail("FilterLogEvents", {{"logGroupName", kGroup}, {"nextToken", "f/1"}}).reason(),
            "InvalidParameterException");
}

// ---- dispatch ----

TEST_F(LogsApiTest, UnknownOperationsAreUnimplemented) {
  Status status = Fail("PutLogEvents", json::object());
  EXPECT_EQ(status.code(), StatusCode::kUnimplemented);
  EXPECT_EQ(status.reason(), "UnknownOperationException");
  EXPECT_NE(status.message().find("PutLogEvents"), std::string::npos);
}

TEST_F(LogsApiTest, TheFullTargetNameIsAccepted) {
  EXPECT_TRUE(HandleLogsOperation(*store_, "Logs_20140328.DescribeLogGroups", json::object()).ok());
}

TEST_F(LogsApiTest, ABodyThatIsNotAnObjectIsInvalid) {
  EXPECT_EQ(Fail("DescribeLogGroups", json::array()).reason(), "InvalidParameterException");
}

TEST_F(LogsApiTest, ArnsUseTheGivenAccount) {
  ASSERT_TRUE(store_->EnsureStream(kGroup, "s").ok());
  AccountContext account;
  account.region = "eu-west-1";
  account.account_id = "123456789012";
  auto out = HandleLogsOperation(*store_, account, "DescribeLogGroups", json::object());
  ASSERT_TRUE(out.ok());
  EXPECT_EQ((*out)["logGroups"][0]["logGroupArn"],
            "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/sagemaker/TrainingJobs");
}

}  // namespace
}  // namespace hearth::api
