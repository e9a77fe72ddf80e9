#include "runtime/log_reader.h"

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "common/ids.h"

namespace hearth::runtime {
namespace {

namespace fs = std::filesystem;

class LogReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("hearth-log-test-" + NewUuid());
    fs::create_directories(dir_);
    file_ = dir_ / "output.log";
  }
  void TearDown() override { fs::remove_all(dir_); }
  void Append(const std::string& text) {
    std::ofstream(file_, std::ios::app | std::ios::binary) << text;
  }
  fs::path dir_, file_;
};

TEST_F(LogReaderTest, MissingFileYieldsNoLines) {
  std::uint64_t offset = 0;
  Result<std::vector<OutputLine>> lines = ReadOutputLines(file_, &offset);
  ASSERT_TRUE(lines.ok());
  EXPECT_TRUE(lines->empty());
  EXPECT_EQ(offset, 0u);
}

TEST_F(LogReaderTest, ReadsCompleteLinesAndLeavesAPartialOneForLater) {
  Append("1700000000000 stdout hello world\n1700000000001 stderr oops\n1700000000002 std");
  std::uint64_t offset = 0;
  Result<std::vector<OutputLine>> lines = ReadOutputLines(file_, &offset);
  ASSERT_TRUE(lines.ok());
  ASSERT_EQ(lines->size(), 2u);
  EXPECT_EQ((*lines)[0].timestamp_millis, 1700000000000);
  EXPECT_FALSE((*lines)[0].is_stderr);
  EXPECT_EQ((*lines)[0].text, "hello world");
  EXPECT_TRUE((*lines)[1].is_stderr);
  EXPECT_EQ((*lines)[1].text, "oops");

  Append("out  two spaces\n1700000000003 stdout \n");
  lines = ReadOutputLines(file_, &offset);
  ASSERT_TRUE(lines.ok());
  ASSERT_EQ(lines->size(), 2u);
  EXPECT_EQ((*lines)[0].timestamp_millis, 1700000000002);
  EXPECT_EQ((*lines)[0].text, " two spaces");
  EXPECT_EQ((*lines)[1].text, "");
  EXPECT_EQ(offset, fs::file_size(file_));

  lines = ReadOutputLines(file_, &offset);
  ASSERT_TRUE(lines.ok());
  EXPECT_TRUE(lines->empty());
}

TEST_F(LogReaderTest, ForeignLinesAreKeptAsText) {
  Append("not a record\n");
  std::uint64_t offset = 0;
  Result<std::vector<OutputLine>> lines = ReadOutputLines(file_, &offset);
  ASSERT_TRUE(lines.ok());
  ASSERT_EQ(lines->size(), 1u);
  EXPECT_EQ((*lines)[0].text, "not a record");
  EXPECT_EQ((*lines)[0].timestamp_millis, 0);
}

TEST_F(LogReaderTest, ControlCharactersAreEscapedAsCloudWatchShowsThem) {
  Append("1700000000000 stdout [3]\ttrain-rmse:0.5\tvalidation-rmse:0.6\r\n");
  std::uint64_t offset = 0;
  Result<std::vector<OutputLine>> lines = ReadOutputLines(file_, &offset);
  ASSERT_TRUE(lines.ok());
  ASSERT_EQ(lines->size(), 1u);
  EXPECT_EQ((*lines)[0].text, "[3]#011train-rmse:0.5#011validation-rmse:0.6");
}

TEST_F(LogReaderTest, OffsetPastTheEndIsAnError) {
  Append("1 stdout x\n");
  std::uint64_t offset = 1000;
  EXPECT_EQ(ReadOutputLines(file_, &offset).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace hearth::runtime
