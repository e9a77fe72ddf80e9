#include "s3api/s3_xml.h"

#include <gtest/gtest.h>

namespace hearth::s3api {
namespace {

TEST(XmlResponse, WritesDeclarationNamespaceAndEscapes) {
  XmlResponse doc("ListBucketResult");
  AddText(doc.root(), "Key", "a<b>&c");
  EXPECT_EQ(
      doc.ToString(),
      R"(<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Key>a&lt;b&gt;&amp;c</Key></ListBucketResult>)");
}

TEST(ParseDeleteObjects, ReadsKeysAndQuiet) {
  auto r = ParseDeleteObjects(
      R"(<?xml version="1.0" encoding="UTF-8"?><Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Object><Key>a</Key></Object><Object><Key>  </Key><VersionId>v</VersionId></Object><Quiet>true</Quiet></Delete>)");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->quiet);
  ASSERT_EQ(r->keys.size(), 2u);
  EXPECT_EQ(r->keys[0], "a");
  EXPECT_EQ(r->keys[1], "  ");
}

TEST(ParseDeleteObjects, RejectsBadDocuments) {
  for (const char* body : {"", "<Delete>", "<Other><Object><Key>a</Key></Object></Other>",
                           "<Delete></Delete>", "<Delete><Object></Object></Delete>"}) {
    auto r = ParseDeleteObjects(body);
    ASSERT_FALSE(r.ok()) << body;
    EXPECT_EQ(r.status().reason(), "MalformedXML");
  }
}

TEST(ParseCompleteMultipartUpload, ReadsPartsAndIgnoresChecksums) {
  auto r = ParseCompleteMultipartUpload(
      R"(<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Part><ETag>"abc"</ETag><PartNumber>1</PartNumber><ChecksumCRC32>AAAAAA==</ChecksumCRC32></Part><Part><PartNumber>2</PartNumber><ETag>def</ETag></Part></CompleteMultipartUpload>)");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].part_number, 1);
  EXPECT_EQ((*r)[0].etag, "\"abc\"");
  EXPECT_EQ((*r)[1].part_number, 2);
}

TEST(ParseCompleteMultipartUpload, RejectsMissingOrBadParts) {
  for (const char* body : {"<CompleteMultipartUpload/>",
                           "<CompleteMultipartUpload><Part><PartNumber>x</PartNumber><ETag>a</"
                           "ETag></Part></CompleteMultipartUpload>",
                           "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber></Part></"
                           "CompleteMultipartUpload>",
                           "not xml"}) {
    auto r = ParseCompleteMultipartUpload(body);
    ASSERT_FALSE(r.ok()) << body;
    EXPECT_EQ(r.status().reason(), "MalformedXML");
  }
}

TEST(ParseCreateBucketConfiguration, EmptyBodyOrLocation) {
  auto empty = ParseCreateBucketConfiguration("");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(*empty, "");
  auto r = ParseCreateBucketConfiguration(
      R"(<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><LocationConstraint>eu-west-1</LocationConstraint></CreateBucketConfiguration>)");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, "eu-west-1");
  EXPECT_FALSE(ParseCreateBucketConfiguration("<oops").ok());
}

}  // namespace
}  // namespace hearth::s3api
