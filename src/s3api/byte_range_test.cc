#include "s3api/byte_range.h"

#include <gtest/gtest.h>

namespace hearth::s3api {
namespace {

std::optional<ByteRange> Ok(std::string_view header, std::uint64_t size) {
  auto r = ParseRangeHeader(header, size);
  EXPECT_TRUE(r.ok()) << header << ": " << r.status().ToString();
  return r.ok() ? *r : std::nullopt;
}

TEST(ParseRangeHeader, ClosedRange) {
  auto r = Ok("bytes=2-4", 10);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->first, 2u);
  EXPECT_EQ(r->last, 4u);
  EXPECT_EQ(r->length(), 3u);
}

TEST(ParseRangeHeader, EndPastTheObjectIsClamped) {
  auto r = Ok("bytes=5-100", 10);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->last, 9u);
}

TEST(ParseRangeHeader, OpenEndedRange) {
  auto r = Ok("bytes=7-", 10);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->first, 7u);
  EXPECT_EQ(r->last, 9u);
}

TEST(ParseRangeHeader, SuffixRangeTakesTheLastBytes) {
  auto r = Ok("bytes=-3", 10);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->first, 7u);
  EXPECT_EQ(r->last, 9u);
  auto whole = Ok("bytes=-50", 10);
  ASSERT_TRUE(whole);
  EXPECT_EQ(whole->first, 0u);
  EXPECT_EQ(whole->last, 9u);
}

TEST(ParseRangeHeader, UnsatisfiableRangesAreInvalidRange) {
  for (auto [header, size] :
       {std::pair{"bytes=10-", 10}, std::pair{"bytes=10-20", 10}, std::pair{"bytes=-0", 10},
        std::pair{"bytes=0-", 0}, std::pair{"bytes=-5", 0}}) {
    auto r = ParseRangeHeader(header, size);
    ASSERT_FALSE(r.ok()) << header;
    EXPECT_EQ(r.status().reason(), "InvalidRange") << header;
  }
}

TEST(ParseRangeHeader, SyntaxItDoesNotHonourMeansWholeObject) {
  for (const char* header :
       {"items=0-1", "bytes=0-1,3-4", "bytes=5-2", "bytes=a-b", "bytes=", "bytes=-", "garbage"}) {
    EXPECT_FALSE(Ok(header, 10).has_value()) << header;
  }
}

TEST(ParseCopySourceRange, RequiresBothEndsInsideTheSource) {
  auto r = ParseCopySourceRange("bytes=0-4", 10);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->length(), 5u);
  EXPECT_FALSE(ParseCopySourceRange("bytes=0-10", 10).ok());
  EXPECT_FALSE(ParseCopySourceRange("bytes=3-", 10).ok());
  EXPECT_FALSE(ParseCopySourceRange("bytes=5-4", 10).ok());
  EXPECT_FALSE(ParseCopySourceRange("0-4", 10).ok());
}

}  // namespace
}  // namespace hearth::s3api
