#include "s3api/checksums.h"

#include <string>

#include <gtest/gtest.h>

namespace hearth::s3api {
namespace {

std::string Sum(ChecksumAlgorithm algorithm, std::string_view data) {
  Checksummer c(algorithm);
  c.Update(data);
  return c.FinishBase64();
}

TEST(Checksums, CrcsMatchTheCatalogueCheckValues) {
  EXPECT_EQ(Crc32c(0, "123456789"), 0xE3069283u);
  EXPECT_EQ(Crc64Nvme(0, "123456789"), 0xAE8B14860A799888ull);
}

TEST(Checksums, IncrementalCrcEqualsOneShot) {
  std::string data;
  for (int i = 0; i < 1000; ++i) data.push_back(static_cast<char>(i * 31 + 7));
  std::uint32_t c32 = 0;
  std::uint64_t c64 = 0;
  for (char ch : data) {  // byte by byte: only the tail loop runs
    c32 = Crc32c(c32, std::string_view(&ch, 1));
    c64 = Crc64Nvme(c64, std::string_view(&ch, 1));
  }
  EXPECT_EQ(c32, Crc32c(0, data));
  EXPECT_EQ(c64, Crc64Nvme(0, data));
}

TEST(Checksums, WireValuesAreBase64OfBigEndianDigests) {
  EXPECT_EQ(Sum(ChecksumAlgorithm::kCrc32, "hello"), "NhCmhg==");
  EXPECT_EQ(Sum(ChecksumAlgorithm::kCrc32c, "123456789"), "4waSgw==");
  EXPECT_EQ(Sum(ChecksumAlgorithm::kCrc64Nvme, "123456789"), "rosUhgp5mIg=");
  EXPECT_EQ(Sum(ChecksumAlgorithm::kSha1, "hello"), "qvTGHdzF6KLavt4PO0gs2a6pQ00=");
  EXPECT_EQ(Sum(ChecksumAlgorithm::kSha256, "hello"),
            "LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=");
}

TEST(Checksums, HeaderNamesRoundTrip) {
  EXPECT_EQ(ChecksumAlgorithmFromHeader("X-Amz-Checksum-CRC32"), ChecksumAlgorithm::kCrc32);
  EXPECT_EQ(ChecksumAlgorithmFromHeader("x-amz-checksum-crc64nvme"), ChecksumAlgorithm::kCrc64Nvme);
  EXPECT_EQ(ChecksumAlgorithmFromHeader("x-amz-checksum-type"), std::nullopt);
  EXPECT_EQ(ChecksumAlgorithmFromHeader("x-amz-checksum-mode"), std::nullopt);
  EXPECT_EQ(ChecksumAlgorithmFromName("SHA256"), ChecksumAlgorithm::kSha256);
  EXPECT_EQ(ChecksumHeaderName(ChecksumAlgorithm::kCrc32c), "x-amz-checksum-crc32c");
}

}  // namespace
}  // namespace hearth::s3api
