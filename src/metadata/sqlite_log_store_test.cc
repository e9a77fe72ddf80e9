#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "metadata/sqlite_metadata_store.h"

namespace hearth::metadata {
namespace {

constexpr char kGroup[] = "/aws/sagemaker/TrainingJobs";

std::vector<LogEvent> Events(std::int64_t first_ts, int count, const std::string& tag) {
  std::vector<LogEvent> out;
  for (int i = 0; i < count; ++i) {
    out.push_back({.timestamp_millis = first_ts + i, .message = tag + "-" + std::to_string(i)});
  }
  return out;
}

std::vector<std::string> Messages(const std::vector<LogEvent>& events) {
  std::vector<std::string> out;
  for (const auto& e : events) out.push_back(e.message);
  return out;
}

class LogStoreContractTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = OpenSqliteLogStore({.path = ":memory:"});
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    store_ = std::move(opened).value();
  }

  std::vector<LogEvent> Get(const GetEventsQuery& q, const std::string& stream = "job/algo-1") {
    auto got = store_->GetEvents(kGroup, stream, q);
    EXPECT_TRUE(got.ok()) << got.status().ToString();
    return got.ok() ? *got : std::vector<LogEvent>{};
  }

  std::unique_ptr<LogStore> store_;
};

TEST_F(LogStoreContractTest, AppendNumbersEventsPerStreamInAppendOrder) {
  ASSERT_TRUE(store_->Append(kGroup, "job/algo-1", Events(100, 3, "a")).ok());
  ASSERT_TRUE(store_->Append(kGroup, "job/algo-2", Events(100, 2, "b")).ok());
  ASSERT_TRUE(store_->Append(kGroup, "job/algo-1", Events(50, 2, "c")).ok());

  auto events = Get({.from_head = true});
  ASSERT_EQ(events.size(), 5u);
  EXPECT_EQ(Messages(events), (std::vector<std::string>{"a-0", "a-1", "a-2", "c-0", "c-1"}));
  for (std::size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].sequence, static_cast<std::int64_t>(i + 1));
    EXPECT_GT(events[i].ingestion_millis, 0);
  }
  EXPECT_EQ(Get({.from_head = true}, "job/algo-2").front().sequence, 1);
}

TEST_F(LogStoreContractTest, IngestFromSourceCommitsLinesMetricsAndPositionTogether) {
  EXPECT_EQ(*store_->SourcePosition(kGroup, "job/algo-1"), 0);
  std::vector<MetricPoint> points = {{.name = "loss", .value = 0.5, .timestamp_millis = 100}};
  ASSERT_TRUE(store_
                  ->IngestFromSource(kGroup, "job/algo-1", Events(100, 3, "a"), "TrainingJob",
                                     "job", points, 42)
                  .ok());
  EXPECT_EQ(*store_->SourcePosition(kGroup, "job/algo-1"), 42);
  EXPECT_EQ(Get({.from_head = true}).size(), 3u);
  ASSERT_EQ(store_->Metrics("TrainingJob", "job")->size(), 1u);

  // A refused batch (metrics without an owner) stores nothing and leaves the position.
  EXPECT_FALSE(
      store_->IngestFromSource(kGroup, "job/algo-1", Events(200, 2, "b"), "", "", points, 99).ok());
  EXPECT_EQ(*store_->SourcePosition(kGroup, "job/algo-1"), 42);
  EXPECT_EQ(Get({.from_head = true}).size(), 3u);
  EXPECT_EQ(*store_->SourcePosition(kGroup, "job/unknown"), 0);
}

TEST_F(LogStoreContractTest, EnsureStreamIsIdempotentAndCreatesAnEmptyStream) {
  ASSERT_TRUE(store_->EnsureStream(kGroup, "s").ok());
  ASSERT_TRUE(store_->EnsureStream(kGroup, "s").ok());
  auto streams = store_->ListStreams(kGroup, "");
  ASSERT_TRUE(streams.ok());
  ASSERT_EQ(streams->size(), 1u);
  EXPECT_FALSE((*streams)[0].first_event_millis.has_value());
  EXPECT_TRUE(Get({}, "s").empty());
  EXPECT_EQ(store_->EnsureStream("", "s").code(), StatusCode::kInvalidArgument);
}

TEST_F(LogStoreContractTest, GetEventsReadsTheNewestByDefaultAndTheOldestFromHead) {
  ASSERT_TRUE(store_->Append(kGroup, "job/algo-1", Events(0, 10, "e")).ok());
  EXPECT_EQ(Messages(Get({.limit = 3})), (std::vector<std::string>{"e-7", "e-8", "e-9"}));
  EXPECT_EQ(Messages(Get({.from_head = true, .limit = 3})),
            (std::vector<std::string>{"e-0", "e-1", "e-2"}));
}

TEST_F(LogStoreContractTest, GetEventsPagesForwardAndBackwardBySequence) {
  ASSERT_TRUE(store_->Append(kGroup, "job/algo-1", Events(0, 10, "e")).ok());
  auto forward = Get({.after_sequence = 4, .limit = 3});
  EXPECT_EQ(Messages(forward), (std::vector<std::string>{"e-4", "e-5", "e-6"}));
  auto backward = Get({.before_sequence = 5, .limit = 3});
  EXPECT_EQ(Messages(backward), (std::vector<std::string>{"e-1", "e-2", "e-3"}));
  EXPECT_TRUE(Get({.after_sequence = 10}).empty());
  EXPECT_TRUE(Get({.before_sequence = 1}).empty());
}

TEST_F(LogStoreContractTest, GetEventsKeepsStartInclusiveAndEndExclusive) {
  ASSERT_TRUE(store_->Append(kGroup, "job/algo-1", Events(100, 10, "e")).ok());
  auto events = Get({.start_millis = 102, .end_millis = 105, .from_head = true});
  EXPECT_EQ(Messages(events), (std::vector<std::string>{"e-2", "e-3", "e-4"}));
}

TEST_F(LogStoreContractTest, GetEventsOfAnUnknownGroupOrStreamIsResourceNotFound) {
  ASSERT_TRUE(store_->EnsureStream(kGroup, "s").ok());
  auto no_stream = store_->GetEvents(kGroup, "other", {});
  EXPECT_EQ(no_stream.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(no_stream.status().reason(), "ResourceNotFoundException");
  auto no_group = store_->GetEvents("/nope", "s", {});
  EXPECT_EQ(no_group.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(no_group.status().reason(), "ResourceNotFoundException");
}

TEST_F(LogStoreContractTest, GetEventsRejectsANonPositiveLimit) {
  ASSERT_TRUE(store_->EnsureStream(kGroup, "s").ok());
  EXPECT_EQ(store_->GetEvents(kGroup, "s", {.limit = 0}).status().code(),
            StatusCode::kInvalidArgument);
}

TEST_F(LogStoreContractTest, ListStreamsOfAnUnknownGroupIsResourceNotFound) {
  auto listed = store_->ListStreams("/nope", "");
  EXPECT_EQ(listed.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(listed.status().reason(), "ResourceNotFoundException");
}

TEST_F(LogStoreContractTest, ListStreamsMatchesThePrefixLiterallyAndKeepsStatistics) {
  ASSERT_TRUE(store_->Append(kGroup, "job_1/algo-2", Events(300, 2, "x")).ok());
  ASSERT_TRUE(store_->Append(kGroup, "job_1/algo-1", Events(200, 3, "abc")).ok());
  ASSERT_TRUE(store_->Append(kGroup, "job_1/algo-1", Events(100, 1, "z")).ok());
  ASSERT_TRUE(store_->Append(kGroup, "jobX1/algo-1", Events(0, 1, "y")).ok());
  auto streams = store_->ListStreams(kGroup, "job_1/");
  ASSERT_TRUE(streams.ok());
  ASSERT_EQ(streams->size(), 2u);
  const LogStreamInfo& s = (*streams)[0];
  EXPECT_EQ(s.name, "job_1/algo-1");
  EXPECT_EQ(s.group, kGroup);
  EXPECT_EQ(s.first_event_millis, 100);
  EXPECT_EQ(s.last_event_millis, 202);
  EXPECT_EQ(s.stored_bytes, 3 * 5 + 3);
  EXPECT_GT(s.last_ingestion_millis, 0);
  EXPECT_EQ((*streams)[1].name, "job_1/algo-2");
  EXPECT_EQ(store_->ListStreams(kGroup, "")->size(), 3u);
}

TEST_F(LogStoreContractTest, ListGroupsMatchesThePrefixOrderedByName) {
  ASSERT_TRUE(store_->EnsureStream("/aws/sagemaker/TrainingJobs", "s").ok());
  ASSERT_TRUE(store_->EnsureStream("/aws/sagemaker/Endpoints/e", "s").ok());
  ASSERT_TRUE(store_->EnsureStream("/other", "s").ok());
  auto groups = store_->ListGroups("/aws/");
  ASSERT_TRUE(groups.ok());
  ASSERT_EQ(groups->size(), 2u);
  EXPECT_EQ((*groups)[0].name, "/aws/sagemaker/Endpoints/e");
  EXPECT_EQ((*groups)[1].name, "/aws/sagemaker/TrainingJobs");
  EXPECT_EQ(store_->ListGroups("")->size(), 3u);
  EXPECT_TRUE(store_->ListGroups("/aws_")->empty());
}

TEST_F(LogStoreContractTest, FilterInterleavesStreamsByTimestamp) {
  ASSERT_TRUE(store_
                  ->Append(kGroup, "j/algo-1",
                           {{.timestamp_millis = 10, .message = "a10"},
                            {.timestamp_millis = 30, .message = "a30"}})
                  .ok());
  ASSERT_TRUE(store_
                  ->Append(kGroup, "j/algo-2",
                           {{.timestamp_millis = 20, .message = "b20"},
                            {.timestamp_millis = 5, .message = "b5"}})
                  .ok());
  auto events = store_->Filter(kGroup, {});
  ASSERT_TRUE(events.ok());
  EXPECT_EQ(Messages(*events), (std::vector<std::string>{"b5", "a10", "b20", "a30"}));
  EXPECT_EQ((*events)[0].stream, "j/algo-2");
}

TEST_F(LogStoreContractTest, FilterPagesAcrossEventsAppendedOutOfTimeOrder) {
  ASSERT_TRUE(store_->Append(kGroup, "late", Events(100, 5, "late")).ok());
  ASSERT_TRUE(store_->Append(kGroup, "early", Events(0, 5, "early")).ok());
  std::vector<std::string> all;
  std::optional<std::int64_t> after;
  for (int page = 0; page < 10; ++page) {
    auto events = store_->Filter(kGroup, {.after_global_sequence = after, .limit = 3});
    ASSERT_TRUE(events.ok()) << events.status().ToString();
    if (events->empty()) break;
    for (const auto& e : *events) all.push_back(e.message);
    after = events->back().sequence;
  }
  EXPECT_EQ(all, (std::vector<std::string>{"early-0", "early-1", "early-2", "early-3", "early-4",
                                           "late-0", "late-1", "late-2", "late-3", "late-4"}));
}

TEST_F(LogStoreContractTest, FilterNarrowsByStreamsTimeAndCaseSensitiveSubstring) {
  ASSERT_TRUE(store_
                  ->Append(kGroup, "j/algo-1",
                           {{.timestamp_millis = 1, .message = "loss=1"},
                            {.timestamp_millis = 2, .message = "LOSS=2"},
                            {.timestamp_millis = 3, .message = "loss=3"}})
                  .ok());
  ASSERT_TRUE(
      store_->Append(kGroup, "k/algo-1", {{.timestamp_millis = 2, .message = "loss=9"}}).ok());
  ASSERT_TRUE(store_->Append(kGroup, "j_x", {{.timestamp_millis = 2, .message = "loss=7"}}).ok());

  EXPECT_EQ(Messages(store_->Filter(kGroup, {.contains = "loss"}).value()),
            (std::vector<std::string>{"loss=1", "loss=9", "loss=7", "loss=3"}));
  EXPECT_EQ(Messages(store_->Filter(kGroup, {.stream_names = {"k/algo-1", "j_x"}}).value()),
            (std::vector<std::string>{"loss=9", "loss=7"}));
  EXPECT_EQ(Messages(store_->Filter(kGroup, {.stream_prefix = "j/"}).value()),
            (std::vector<std::string>{"loss=1", "LOSS=2", "loss=3"}));
  EXPECT_EQ(Messages(store_->Filter(kGroup, {.start_millis = 2, .end_millis = 3}).value()),
            (std::vector<std::string>{"LOSS=2", "loss=9", "loss=7"}));
  EXPECT_EQ(Messages(store_->Filter(kGroup, {.contains = "loss", .limit = 2}).value()),
            (std::vector<std::string>{"loss=1", "loss=9"}));
}

TEST_F(LogStoreContractTest, FilterOfAnUnknownGroupIsResourceNotFound) {
  auto events = store_->Filter("/nope", {});
  EXPECT_EQ(events.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(events.status().reason(), "ResourceNotFoundException");
}

TEST_F(LogStoreContractTest, FilterRefusesToResumeAfterAnUnknownEvent) {
  ASSERT_TRUE(store_->EnsureStream(kGroup, "s").ok());
  EXPECT_EQ(store_->Filter(kGroup, {.after_global_sequence = 77}).status().code(),
            StatusCode::kInvalidArgument);
}

TEST_F(LogStoreContractTest, MetricsComeBackInAppendOrderPerResource) {
  ASSERT_TRUE(
      store_
          ->AppendMetrics("TrainingJob", "j",
                          {{.name = "train:loss", .value = 0.5, .timestamp_millis = 10},
                           {.name = "validation:rmse", .value = 2.25, .timestamp_millis = 10}})
          .ok());
  ASSERT_TRUE(
      store_
          ->AppendMetrics("TrainingJob", "j",
                          {{.name = "train:loss", .value = std::nan(""), .timestamp_millis = 20}})
          .ok());
  ASSERT_TRUE(store_->AppendMetrics("TrainingJob", "other", {{.name = "x", .value = 1}}).ok());

  auto points = store_->Metrics("TrainingJob", "j");
  ASSERT_TRUE(points.ok());
  ASSERT_EQ(points->size(), 3u);
  EXPECT_EQ((*points)[0].name, "train:loss");
  EXPECT_DOUBLE_EQ((*points)[0].value, 0.5);
  EXPECT_EQ((*points)[1].name, "validation:rmse");
  EXPECT_DOUBLE_EQ((*points)[1].value, 2.25);
  EXPECT_TRUE(std::isnan((*points)[2].value));
  EXPECT_EQ((*points)[2].timestamp_millis, 20);
  EXPECT_TRUE(store_->Metrics("TrainingJob", "none")->empty());
}

TEST(SqliteLogStoreFileTest, AReopenedFileHoldsEventsAndKeepsNumbering) {
  std::string pattern = (std::filesystem::temp_directory_path() / "hearth-logs-XXXXXX").string();
  ASSERT_NE(mkdtemp(pattern.data()), nullptr);
  SqliteOptions options{.path = std::filesystem::path(pattern) / "logs.db"};
  {
    auto store = OpenSqliteLogStore(options).value();
    ASSERT_TRUE(store->Append(kGroup, "s", Events(0, 3, "a")).ok());
    ASSERT_TRUE(store->AppendMetrics("TrainingJob", "j", {{.name = "m", .value = 1}}).ok());
  }
  {
    auto store = OpenSqliteLogStore(options).value();
    ASSERT_TRUE(store->Append(kGroup, "s", Events(3, 1, "b")).ok());
    auto events = store->GetEvents(kGroup, "s", {.from_head = true}).value();
    ASSERT_EQ(events.size(), 4u);
    EXPECT_EQ(events.back().sequence, 4);
    EXPECT_EQ(events.back().message, "b-0");
    EXPECT_EQ(store->Metrics("TrainingJob", "j")->size(), 1u);
  }
  std::error_code ec;
  std::filesystem::remove_all(pattern, ec);
}

}  // namespace
}  // namespace hearth::metadata
