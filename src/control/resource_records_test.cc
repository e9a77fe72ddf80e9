#include "control/resource_records.h"

#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/crypto.h"
#include "metadata/sqlite_metadata_store.h"

namespace hearth::control {
namespace {

using nlohmann::json;

std::vector<std::string> Names(std::size_t n) {
  std::vector<std::string> names;
  for (std::size_t i = 0; i < n; ++i) names.push_back("job-" + std::to_string(1000 + i));
  return names;
}

// Follows NextToken from the first page to the last and returns every page's bounds.
std::vector<Page> AllPages(json request, std::size_t total) {
  std::vector<Page> pages;
  std::vector<std::string> names = Names(total);
  for (int guard = 0; guard < 100; ++guard) {
    Result<Page> page = Paginate(request, names);
    EXPECT_TRUE(page.ok()) << page.status().ToString();
    if (!page.ok()) break;
    pages.push_back(*page);
    if (!page->next_token) break;
    request["NextToken"] = *page->next_token;
  }
  return pages;
}

TEST(PaginateTest, PagesByTenWhenMaxResultsIsAbsent) {
  std::vector<Page> pages = AllPages(json::object(), 25);
  ASSERT_EQ(pages.size(), 3u);
  EXPECT_EQ(pages[0].begin, 0u);
  EXPECT_EQ(pages[0].end, 10u);
  EXPECT_EQ(pages[1].begin, 10u);
  EXPECT_EQ(pages[1].end, 20u);
  EXPECT_EQ(pages[2].begin, 20u);
  EXPECT_EQ(pages[2].end, 25u);
  EXPECT_FALSE(pages[2].next_token.has_value());
}

TEST(PaginateTest, HonoursMaxResultsAndCoversEveryRowOnce) {
  std::vector<Page> pages = AllPages(json{{"MaxResults", 3}}, 7);
  ASSERT_EQ(pages.size(), 3u);
  std::size_t expected_begin = 0;
  for (const Page& p : pages) {
    EXPECT_EQ(p.begin, expected_begin);
    EXPECT_LE(p.end - p.begin, 3u);
    expected_begin = p.end;
  }
  EXPECT_EQ(expected_begin, 7u);
}

TEST(PaginateTest, ExactMultipleOfPageSizeHasNoTrailingToken) {
  std::vector<Page> pages = AllPages(json{{"MaxResults", 5}}, 10);
  ASSERT_EQ(pages.size(), 2u);
  EXPECT_FALSE(pages[1].next_token.has_value());
}

TEST(PaginateTest, EmptyListIsOnePageWithoutToken) {
  Result<Page> page = Paginate(json::object(), {});
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->begin, 0u);
  EXPECT_EQ(page->end, 0u);
  EXPECT_FALSE(page->next_token.has_value());
}

TEST(PaginateTest, ContinuesAfterTheLastRowWhenRowsAreInsertedBeforeIt) {
  // Newest first: the next page must not repeat rows because a new one arrived at the top.
  std::vector<std::string> names = {"e", "d", "c", "b", "a"};
  Result<Page> first = Paginate(json{{"MaxResults", 2}}, names);
  ASSERT_TRUE(first.ok() && first->next_token);
  names.insert(names.begin(), "f");
  Result<Page> second = Paginate(json{{"MaxResults", 2}, {"NextToken", *first->next_token}}, names);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(names[second->begin], "c");
  EXPECT_EQ(second->end - second->begin, 2u);
}

TEST(PaginateTest, FallsBackToThePositionWhenTheLastRowLeftTheList) {
  Result<Page> page =
      Paginate(json{{"NextToken", Base64Encode("after:1:gone")}}, {"a", "b", "c", "d"});
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->begin, 2u);
}

TEST(PaginateTest, TokenPastTheEndGivesAnEmptyPage) {
  Result<Page> page = Paginate(json{{"NextToken", Base64Encode("after:50:x")}}, Names(5));
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->begin, page->end);
  EXPECT_FALSE(page->next_token.has_value());
}

TEST(PaginateTest, RejectsMalformedTokensAsValidationException) {
  for (const std::string& token :
       {std::string("not base64!"), Base64Encode("page:3"), Base64Encode("after:abc:x"),
        Base64Encode("after:3"), std::string("")}) {
    Result<Page> page = Paginate(json{{"NextToken", token}}, Names(20));
    ASSERT_FALSE(page.ok()) << "token '" << token << "' was accepted";
    EXPECT_EQ(page.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(page.status().reason(), "ValidationException");
    EXPECT_NE(page.status().message().find("pagination token"), std::string::npos);
  }
}

TEST(TimestampMillisTest, ReadsEpochSecondsWithFraction) {
  EXPECT_EQ(TimestampMillis(json(1700000000.25)), 1700000000250);
  EXPECT_EQ(TimestampMillis(json(1700000000)), 1700000000000);
}

// Controllers write times as millis / 1000.0; reading one back must give the same millis, or
// a CreationTimeAfter filter that echoes a job's own CreationTime would match that job.
TEST(TimestampMillisTest, RoundTripsMillisWrittenAsEpochSeconds) {
  for (std::int64_t millis : {std::int64_t{1001}, std::int64_t{1079185239360},
                              std::int64_t{2192570241286}, std::int64_t{1764306000123}}) {
    EXPECT_EQ(TimestampMillis(json(static_cast<double>(millis) / 1000.0)), millis);
  }
}

TEST(TimestampMillisTest, ReadsIso8601AsUtc) {
  EXPECT_EQ(TimestampMillis(json("2023-11-14T22:13:20Z")), 1700000000000);
  EXPECT_EQ(TimestampMillis(json("1970-01-01T00:00:01")), 1000);
}

TEST(TimestampMillisTest, RejectsOtherValues) {
  EXPECT_FALSE(TimestampMillis(json("yesterday")).has_value());
  EXPECT_FALSE(TimestampMillis(json(nullptr)).has_value());
  EXPECT_FALSE(TimestampMillis(json::object()).has_value());
}

class MutateResourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = metadata::OpenSqliteMetadataStore({.path = ":memory:"});
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
    metadata::Resource r;
    r.kind = "Thing";
    r.name = "t1";
    r.arn = "arn:thing/t1";
    r.status = "Ready";
    r.created_millis = r.modified_millis = 1000;
    r.doc = {{"Count", 0}};
    ASSERT_TRUE(store_->Create(r, metadata::Transition{"Ready", "", 1000, "created"}).ok());
  }

  std::unique_ptr<metadata::MetadataStore> store_;
};

TEST_F(MutateResourceTest, AppliesTheMutationAndRecordsItsTransition) {
  Result<metadata::Resource> updated =
      MutateResource(*store_, "Thing", "t1", [](metadata::Resource& r) {
        r.status = "Busy";
        r.doc["Count"] = 1;
        return Result<std::optional<metadata::Transition>>(
            metadata::Transition{"Busy", "", 2000, "go"});
      });
  ASSERT_TRUE(updated.ok()) << updated.status().ToString();
  EXPECT_EQ(updated->version, 2);
  Result<metadata::Resource> stored = store_->Get("Thing", "t1");
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->status, "Busy");
  EXPECT_EQ(stored->doc["Count"], 1);
  Result<std::vector<metadata::Transition>> history = store_->History("Thing", "t1");
  ASSERT_TRUE(history.ok());
  ASSERT_EQ(history->size(), 2u);
  EXPECT_EQ(history->back().status, "Busy");
  EXPECT_EQ(history->back().message, "go");
}

TEST_F(MutateResourceTest, ConcurrentWritersNeverLoseAnUpdate) {
  auto increment = [&] {
    for (int i = 0; i < 25; ++i) {
      Result<metadata::Resource> r =
          MutateResource(*store_, "Thing", "t1", [](metadata::Resource& rec) {
            rec.doc["Count"] = rec.doc["Count"].get<int>() + 1;
            return Result<std::optional<metadata::Transition>>(std::nullopt);
          });
      EXPECT_TRUE(r.ok()) << r.status().ToString();
    }
  };
  std::thread a(increment), b(increment);
  a.join();
  b.join();
  Result<metadata::Resource> stored = store_->Get("Thing", "t1");
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->doc["Count"], 50);
  EXPECT_EQ(store_->History("Thing", "t1")->size(), 1u);  // no transitions were recorded
}

TEST_F(MutateResourceTest, MutationErrorAbandonsTheUpdate) {
  Result<metadata::Resource> r =
      MutateResource(*store_, "Thing", "t1", [](metadata::Resource& rec) {
        rec.status = "Broken";
        return Result<std::optional<metadata::Transition>>(
            FailedPrecondition("wrong state", "WrongState"));
      });
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(r.status().reason(), "WrongState");
  EXPECT_EQ(store_->Get("Thing", "t1")->status, "Ready");
  EXPECT_EQ(store_->Get("Thing", "t1")->version, 1);
}

TEST_F(MutateResourceTest, MissingResourceIsNotFound) {
  bool called = false;
  Result<metadata::Resource> r = MutateResource(*store_, "Thing", "nope", [&](metadata::Resource&) {
    called = true;
    return Result<std::optional<metadata::Transition>>(std::nullopt);
  });
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_FALSE(called);
}

}  // namespace
}  // namespace hearth::control
