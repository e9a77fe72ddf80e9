#include "s3api/s3_errors.h"

#include <gtest/gtest.h>
#include <pugixml.hpp>

namespace hearth::s3api {
namespace {

TEST(ToS3Error, ReasonsNameTheS3CodeAndStatus) {
  struct Case {
    Status status;
    int http;
    const char* code;
  } cases[] = {
      {NotFound("x", "NoSuchBucket"), 404, "NoSuchBucket"},
      {NotFound("x", "NoSuchKey"), 404, "NoSuchKey"},
      {NotFound("x", "NoSuchUpload"), 404, "NoSuchUpload"},
      {AlreadyExists("x", "BucketAlreadyOwnedByYou"), 409, "BucketAlreadyOwnedByYou"},
      {FailedPrecondition("x", "BucketNotEmpty"), 409, "BucketNotEmpty"},
      {InvalidArgument("x", "InvalidBucketName"), 400, "InvalidBucketName"},
      {InvalidArgument("x", "BadDigest"), 400, "BadDigest"},
      {InvalidArgument("x", "InvalidPart"), 400, "InvalidPart"},
      {InvalidArgument("x", "InvalidPartOrder"), 400, "InvalidPartOrder"},
      {InvalidArgument("x", "EntityTooSmall"), 400, "EntityTooSmall"},
      {InvalidArgument("x", "EntityTooLarge"), 400, "EntityTooLarge"},
      {InvalidArgument("x", "InvalidRange"), 416, "InvalidRange"},
      {InvalidArgument("x", "MalformedXML"), 400, "MalformedXML"},
      {InvalidArgument("x", "KeyTooLongError"), 400, "KeyTooLongError"},
      {InvalidArgument("x", "PreconditionFailed"), 412, "PreconditionFailed"},
      {Unimplemented("x", "NotImplemented"), 501, "NotImplemented"},
  };
  for (const auto& c : cases) {
    S3Error e = ToS3Error(c.status);
    EXPECT_EQ(e.http_status, c.http) << c.code;
    EXPECT_EQ(e.code, c.code);
  }
}

TEST(ToS3Error, CodesWithoutAKnownReasonGetGenericErrors) {
  EXPECT_EQ(ToS3Error(InvalidArgument("bad")).code, "InvalidArgument");
  EXPECT_EQ(ToS3Error(InvalidArgument("bad")).http_status, 400);
  EXPECT_EQ(ToS3Error(Internal("boom")).code, "InternalError");
  EXPECT_EQ(ToS3Error(Internal("boom")).http_status, 500);
  EXPECT_EQ(ToS3Error(Unimplemented("no")).http_status, 501);
  EXPECT_EQ(ToS3Error(NotFound("gone", "SomethingElse")).code, "NoSuchKey");
  EXPECT_EQ(ToS3Error(Status(StatusCode::kPermissionDenied, "no")).http_status, 403);
}

TEST(S3ErrorResponse, BodyIsTheS3ErrorDocument) {
  http::Response r = S3ErrorResponse(NotFound("The specified key does not exist.", "NoSuchKey"),
                                     "/b/k", "req-1", /*head_request=*/false);
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.body.rfind(R"(<?xml version="1.0" encoding="UTF-8"?>)", 0), 0u) << r.body;
  pugi::xml_document doc;
  ASSERT_TRUE(doc.load_string(r.body.c_str()));
  pugi::xml_node e = doc.child("Error");
  EXPECT_STREQ(e.child_value("Code"), "NoSuchKey");
  EXPECT_STREQ(e.child_value("Message"), "The specified key does not exist.");
  EXPECT_STREQ(e.child_value("Resource"), "/b/k");
  EXPECT_STREQ(e.child_value("RequestId"), "req-1");
  bool has_id = false;
  for (const auto& [k, v] : r.headers) has_id |= (k == "x-amz-request-id" && v == "req-1");
  EXPECT_TRUE(has_id);
}

TEST(S3ErrorResponse, HeadErrorsHaveNoBody) {
  http::Response r = S3ErrorResponse(NotFound("x", "NoSuchKey"), "/b/k", "req-1", true);
  EXPECT_EQ(r.status, 404);
  EXPECT_TRUE(r.body.empty());
}

}  // namespace
}  // namespace hearth::s3api
