#include <chrono>
#include <filesystem>
#include <vector>

#include <gtest/gtest.h>

#include "common/clock.h"
#include "common/crypto.h"
#include "common/fs.h"
#include "common/ids.h"
#include "common/status.h"
#include "common/wait.h"

namespace hearth {
namespace {

Result<int> Half(int x) {
  if (x % 2 != 0) return InvalidArgument("odd");
  return x / 2;
}

Result<int> Quarter(int x) {
  ASSIGN_OR_RETURN(int h, Half(x));
  ASSIGN_OR_RETURN(int q, Half(h));
  return q;
}

TEST(Status, AssignOrReturnPropagatesTheFirstError) {
  EXPECT_EQ(*Quarter(8), 2);
  Result<int> r = Quarter(6);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().ToString(), "InvalidArgument: odd");
}

TEST(Crypto, KnownDigestsMatchTheirStandardVectors) {
  EXPECT_EQ(Md5Hex(""), "d41d8cd98f00b204e9800998ecf8427e");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  // RFC 4231 test case 2.
  EXPECT_EQ(HexEncode(HmacSha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  Md5Hasher h;
  h.Update("a");
  h.Update("bc");
  EXPECT_EQ(HexEncode(h.FinishRaw()), Md5Hex("abc"));
}

TEST(Crypto, Base64RoundTripsAndRejectsGarbage) {
  for (std::string s : {"", "a", "ab", "abc", "abcd"}) {
    std::string out;
    ASSERT_TRUE(Base64Decode(Base64Encode(s), &out));
    EXPECT_EQ(out, s);
  }
  std::string out;
  EXPECT_FALSE(Base64Decode("abc", &out));
}

TEST(Ids, ArnLowerCasesTheName) {
  AccountContext acct;
  EXPECT_EQ(SageMakerArn(acct, "training-job", "MyJob"),
            "arn:aws:sagemaker:us-east-1:000000000000:training-job/myjob");
  EXPECT_NE(NewUuid(), NewUuid());
  EXPECT_EQ(NewUuid().size(), 36u);
}

TEST(Clock, FormatsKnownInstants) {
  EXPECT_EQ(FormatIso8601Millis(1700000000123), "2023-11-14T22:13:20.123Z");
  EXPECT_EQ(FormatHttpDate(1700000000123), "Tue, 14 Nov 2023 22:13:20 GMT");
}

TEST(Fs, WriteFileAtomicReplacesWholeFiles) {
  auto dir = std::filesystem::temp_directory_path() / ("hearth-fs-" + NewUuid());
  std::filesystem::create_directories(dir);
  ASSERT_TRUE(WriteFileAtomic(dir / "f", "one").ok());
  ASSERT_TRUE(WriteFileAtomic(dir / "f", "two").ok());
  EXPECT_EQ(*ReadFile(dir / "f"), "two");
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir), {}), 1);
  std::filesystem::remove_all(dir);
}

TEST(PollBackoff, DoublesFromFirstUpToTheCap) {
  using std::chrono::milliseconds;
  PollBackoff backoff(milliseconds(100));
  std::vector<long> waits;
  for (int i = 0; i < 8; ++i) waits.push_back(backoff.Next().count());
  EXPECT_EQ(waits, (std::vector<long>{2, 4, 8, 16, 32, 64, 100, 100}));
  PollBackoff small(milliseconds(1), milliseconds(5));
  EXPECT_EQ(small.Next().count(), 1);
  EXPECT_EQ(small.Next().count(), 1);
}

}  // namespace
}  // namespace hearth
