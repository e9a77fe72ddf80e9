#include "s3api/aws_chunked.h"

#include <string>

#include <gtest/gtest.h>

namespace hearth::s3api {
namespace {

const std::string kSig(64, 'a');

// A SigV4 streaming body: "<hex>;chunk-signature=<sig>\r\n<data>\r\n ...
// 0;chunk-signature=..\r\n\r\n"
std::string SignedBody() {
  return "5;chunk-signature=" + kSig + "\r\nhello\r\n" + "b;chunk-signature=" + kSig +
         "\r\n world, 123\r\n" + "0;chunk-signature=" + kSig + "\r\n\r\n";
}

// What botocore's AwsChunkedWrapper sends for an unsigned-trailer upload.
const std::string kUnsignedTrailerBody =
    "5\r\nhello\r\n6\r\n world\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\n\r\n";

struct Decoded {
  std::string payload;
  Status status;
};

Decoded DecodeInPieces(const std::string& body, std::vector<std::size_t> cuts) {
  AwsChunkedDecoder decoder;
  Decoded out;
  auto sink = [&](std::string_view data) {
    out.payload.append(data);
    return Status::Ok();
  };
  std::size_t at = 0;
  cuts.push_back(body.size());
  for (std::size_t cut : cuts) {
    out.status = decoder.Feed(std::string_view(body).substr(at, cut - at), sink);
    if (!out.status.ok()) return out;
    at = cut;
  }
  out.status = decoder.Finish();
  return out;
}

TEST(AwsChunkedDecoder, DecodesSignedStreamingBody) {
  Decoded d = DecodeInPieces(SignedBody(), {});
  ASSERT_TRUE(d.status.ok()) << d.status.ToString();
  EXPECT_EQ(d.payload, "hello world, 123");
}

TEST(AwsChunkedDecoder, DecodesUnsignedBodyAndCollectsTrailers) {
  AwsChunkedDecoder decoder;
  std::string payload;
  ASSERT_TRUE(decoder
                  .Feed(kUnsignedTrailerBody,
                        [&](std::string_view d) {
                          payload.append(d);
                          return Status::Ok();
                        })
                  .ok());
  ASSERT_TRUE(decoder.Finish().ok());
  EXPECT_TRUE(decoder.done());
  EXPECT_EQ(payload, "hello world");
  EXPECT_EQ(decoder.decoded_size(), 11u);
  ASSERT_EQ(decoder.trailers().size(), 1u);
  EXPECT_EQ(decoder.trailers()[0].first, "x-amz-checksum-crc32");
  EXPECT_EQ(decoder.trailers()[0].second, "DUoRhQ==");
}

TEST(AwsChunkedDecoder, SignedTrailerVariantKeepsAllTrailers) {
  std::string body = "3;chunk-signature=" + kSig + "\r\nabc\r\n0;chunk-signature=" + kSig +
                     "\r\nX-Amz-Checksum-Crc32c: AAAAAA==\r\nx-amz-trailer-signature:" + kSig +
                     "\r\n\r\n";
  AwsChunkedDecoder decoder;
  ASSERT_TRUE(decoder.Feed(body, [](std::string_view) { return Status::Ok(); }).ok());
  ASSERT_TRUE(decoder.Finish().ok());
  ASSERT_EQ(decoder.trailers().size(), 2u);
  EXPECT_EQ(decoder.trailers()[0].first, "x-amz-checksum-crc32c");
  EXPECT_EQ(decoder.trailers()[0].second, "AAAAAA==");
}

TEST(AwsChunkedDecoder, SplitAtEveryByteBoundaryGivesTheSamePayload) {
  for (const std::string& body : {SignedBody(), kUnsignedTrailerBody}) {
    std::string expected = DecodeInPieces(body, {}).payload;
    for (std::size_t cut = 0; cut <= body.size(); ++cut) {
      Decoded d = DecodeInPieces(body, {cut});
      ASSERT_TRUE(d.status.ok()) << "cut at " << cut << ": " << d.status.ToString();
      EXPECT_EQ(d.payload, expected) << "cut at " << cut;
    }
  }
}

TEST(AwsChunkedDecoder, ByteByByteFeedingGivesTheSamePayload) {
  std::string body = SignedBody();
  std::vector<std::size_t> cuts;
  for (std::size_t i = 1; i < body.size(); ++i) cuts.push_back(i);
  Decoded d = DecodeInPieces(body, cuts);
  ASSERT_TRUE(d.status.ok()) << d.status.ToString();
  EXPECT_EQ(d.payload, "hello world, 123");
}

TEST(AwsChunkedDecoder, AcceptsStreamEndingRightAfterTheFinalChunk) {
  EXPECT_TRUE(DecodeInPieces("3\r\nabc\r\n0\r\n", {}).status.ok());
  EXPECT_TRUE(DecodeInPieces("3\r\nabc\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n", {}).status.ok());
}

TEST(AwsChunkedDecoder, RejectsMalformedFraming) {
  const char* bad[] = {
      "zz\r\nabc\r\n0\r\n\r\n",             // size not hex
      "\r\nabc\r\n0\r\n\r\n",               // empty size
      "3\nabc\r\n0\r\n\r\n",                // LF without CR
      "3\r\nabcd\r\n0\r\n\r\n",             // data longer than declared
      "3\r\nabc\n0\r\n\r\n",                // data not followed by CRLF
      "3\r\nabc\r\n0\r\nno-colon\r\n\r\n",  // trailer without ':'
      "3\r\nabc\r\n0\r\n\r\nextra",         // bytes after the end
      "10000000000000000\r\n",              // size overflows
  };
  for (const char* body : bad) {
    Status s = DecodeInPieces(body, {}).status;
    EXPECT_FALSE(s.ok()) << body;
    EXPECT_EQ(s.reason(), "IncompleteBody") << body;
  }
}

TEST(AwsChunkedDecoder, RejectsTruncatedStreams) {
  for (const char* body : {"", "3\r\nab", "3\r\nabc\r\n", "3\r\nabc", "3;chunk-sig",
                           "3\r\nabc\r\n0\r\nx-amz-checksum-crc32:AA"}) {
    EXPECT_FALSE(DecodeInPieces(body, {}).status.ok()) << body;
  }
}

TEST(AwsChunkedDecoder, RejectsEndlessSizeLine) {
  AwsChunkedDecoder decoder;
  std::string junk(100000, '1');
  EXPECT_FALSE(decoder.Feed(junk, [](std::string_view) { return Status::Ok(); }).ok());
}

TEST(AwsChunkedDecoder, PropagatesSinkErrors) {
  AwsChunkedDecoder decoder;
  Status s =
      decoder.Feed("3\r\nabc\r\n0\r\n\r\n", [](std::string_view) { return Internal("disk full"); });
  EXPECT_EQ(s.code(), StatusCode::kInternal);
}

}  // namespace
}  // namespace hearth::s3api
