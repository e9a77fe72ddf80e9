#include "s3api/s3_api.h"

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <pugixml.hpp>
#include <stdlib.h>
#include <strings.h>
#include <unistd.h>

#include "common/crypto.h"
#include "storage/local_object_store.h"

namespace hearth::s3api {
namespace {

namespace fs = std::filesystem;

// Builds a Request the way the HTTP server does: raw and decoded path, decoded query.
http::Request MakeRequest(std::string method, std::string target, std::string body = "",
                          std::vector<std::pair<std::string, std::string>> headers = {}) {
  http::Request r;
  r.method = std::move(method);
  r.target = target;
  auto q = target.find('?');
  r.raw_path = target.substr(0, q);
  EXPECT_TRUE(http::PercentDecode(r.raw_path, &r.path));
  if (q != std::string::npos) {
    std::string_view query = std::string_view(target).substr(q + 1);
    while (!query.empty()) {
      auto amp = query.find('&');
      std::string_view item = query.substr(0, amp);
      auto eq = item.find('=');
      std::string k, v;
      EXPECT_TRUE(http::PercentDecode(item.substr(0, eq), &k));
      if (eq != std::string_view::npos) {
        EXPECT_TRUE(http::PercentDecode(item.substr(eq + 1), &v));
      }
      r.query.emplace_back(k, v);
      if (amp == std::string_view::npos) break;
      query.remove_prefix(amp + 1);
    }
  }
  for (const auto& [k, v] : headers) r.headers.Add(k, v);
  r.body = http::RequestBody::InMemory(std::move(body));
  r.request_id = "test-request-id";
  return r;
}

std::string Header(const http::Response& r, std::string_view name) {
  for (const auto& [k, v] : r.headers) {
    if (strcasecmp(k.c_str(), std::string(name).c_str()) == 0) return v;
  }
  return "";
}

bool HasHeader(const http::Response& r, std::string_view name) {
  for (const auto& [k, v] : r.headers) {
    if (strcasecmp(k.c_str(), std::string(name).c_str()) == 0) return true;
  }
  return false;
}

std::string ErrorCode(const http::Response& r) {
  pugi::xml_document doc;
  doc.load_string(r.body.c_str());
  return doc.child("Error").child_value("Code");
}

std::string Base64Md5(std::string_view data) {
  Md5Hasher h;
  h.Update(data);
  return Base64Encode(h.FinishRaw());
}

class S3ApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/hearth-s3api-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    auto store = storage::OpenLocalObjectStore({.root = root_ / "store"});
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
    api_ = std::make_unique<S3Api>(*store_);
    ASSERT_EQ(Do("PUT", "/bkt").status, 200);
  }
  void TearDown() override {
    api_.reset();
    store_.reset();
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  int file_bodies_ = 0;  // responses that came with a FileBody

  http::Response Do(std::string method, std::string target, std::string body = "",
                    std::vector<std::pair<std::string, std::string>> headers = {}) {
    http::Request r =
        MakeRequest(std::move(method), std::move(target), std::move(body), std::move(headers));
    http::Response response = api_->Handle(r);
    EXPECT_EQ(Header(response, "x-amz-request-id"), "test-request-id");
    if (response.file) {
      // What the HTTP server would send: the file region, read here into the body.
      response.body.resize(response.file->length);
      ssize_t n = ::pread(response.file->fd->get(), response.body.data(), response.file->length,
                          static_cast<off_t>(response.file->offset));
      EXPECT_EQ(n, static_cast<ssize_t>(response.file->length));
      ++file_bodies_;
    }
    return response;
  }

  http::Response Put(std::string target, std::string body,
                     std::vector<std::pair<std::string, std::string>> headers = {}) {
    return Do("PUT", std::move(target), std::move(body), std::move(headers));
  }

  // Parses an XML response body; fails the test if it is not XML.
  pugi::xml_node Xml(const http::Response& r) {
    docs_.push_back(std::make_unique<pugi::xml_document>());
    EXPECT_TRUE(docs_.back()->load_string(r.body.c_str())) << r.body;
    return docs_.back()->document_element();
  }

  // Follows ListObjectsV2 continuation tokens; returns keys and common prefixes in order.
  std::vector<std::string> ListAllV2(const std::string& query, int* pages) {
    std::vector<std::string> out;
    std::string token;
    *pages = 0;
    while (true) {
      std::string target = "/bkt?list-type=2&" + query;
      if (!token.empty()) target += "&continuation-token=" + http::UriEncode(token, false);
      http::Response r = Do("GET", target);
      EXPECT_EQ(r.status, 200) << r.body;
      pugi::xml_node root = Xml(r);
      ++*pages;
      for (pugi::xml_node n : root.children()) {
        if (std::string_view(n.name()) == "Contents") out.push_back(n.child_value("Key"));
        if (std::string_view(n.name()) == "CommonPrefixes") out.push_back(n.child_value("Prefix"));
      }
      if (std::string_view(root.child_value("IsTruncated")) != "true") break;
      token = root.child_value("NextContinuationToken");
      if (token.empty() || *pages > 100) {
        ADD_FAILURE() << "truncated without a usable token";
        break;
      }
    }
    return out;
  }

  fs::path root_;
  std::unique_ptr<storage::ObjectStore> store_;
  std::unique_ptr<S3Api> api_;
  std::vector<std::unique_ptr<pugi::xml_document>> docs_;
};

// --- buckets ---------------------------------------------------------------------------------

TEST_F(S3ApiTest, ListBucketsShowsCreatedBuckets) {
  ASSERT_EQ(
      Put("/other",
          R"(<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><LocationConstraint>eu-west-1</LocationConstraint></CreateBucketConfiguration>)")
          .status,
      200);
  http::Response r = Do("GET", "/");
  ASSERT_EQ(r.status, 200);
  std::vector<std::string> names;
  for (pugi::xml_node b : Xml(r).child("Buckets").children("Bucket"))
    names.push_back(b.child_value("Name"));
  EXPECT_EQ(names, (std::vector<std::string>{"bkt", "other"}));
}

TEST_F(S3ApiTest, CreatingAnExistingBucketIsBucketAlreadyOwnedByYou) {
  http::Response r = Put("/bkt", "");
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(ErrorCode(r), "BucketAlreadyOwnedByYou");
  pugi::xml_node e = Xml(r);
  EXPECT_STREQ(e.child_value("Resource"), "/bkt");
  EXPECT_STREQ(e.child_value("RequestId"), "test-request-id");
}

TEST_F(S3ApiTest, InvalidBucketNameIsRejected) {
  http::Response r = Put("/Bad_Name", "");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(ErrorCode(r), "InvalidBucketName");
}

TEST_F(S3ApiTest, HeadBucketAnswersWithoutBody) {
  EXPECT_EQ(Do("HEAD", "/bkt").status, 200);
  http::Response missing = Do("HEAD", "/nope");
  EXPECT_EQ(missing.status, 404);
  EXPECT_TRUE(missing.body.empty());
}

TEST_F(S3ApiTest, GetBucketLocationAnswersEmptyForUsEast1) {
  http::Response r = Do("GET", "/bkt?location");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(std::string(Xml(r).name()), "LocationConstraint");
  EXPECT_EQ(Do("GET", "/nope?location").status, 404);
}

TEST_F(S3ApiTest, DeleteBucketRequiresAnEmptyBucket) {
  ASSERT_EQ(Put("/bkt/k", "x").status, 200);
  http::Response r = Do("DELETE", "/bkt");
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(ErrorCode(r), "BucketNotEmpty");
  ASSERT_EQ(Do("DELETE", "/bkt/k").status, 204);
  EXPECT_EQ(Do("DELETE", "/bkt").status, 204);
  EXPECT_EQ(ErrorCode(Do("GET", "/bkt?list-type=2")), "NoSuchBucket");
}

TEST_F(S3ApiTest, TaggingAndVersioningReadAsNone) {
  ASSERT_EQ(Put("/bkt/k", "x").status, 200);
  http::Response tags = Do("GET", "/bkt/k?tagging");
  ASSERT_EQ(tags.status, 200) << tags.body;
  EXPECT_TRUE(Xml(tags).child("TagSet"));
  EXPECT_FALSE(Xml(tags).child("TagSet").first_child());
  EXPECT_EQ(ErrorCode(Do("GET", "/bkt/missing?tagging")), "NoSuchKey");
  EXPECT_EQ(ErrorCode(Do("GET", "/bkt?tagging")), "NoSuchTagSet");
  http::Response versioning = Do("GET", "/bkt?versioning");
  ASSERT_EQ(versioning.status, 200);
  EXPECT_EQ(std::string(Xml(versioning).name()), "VersioningConfiguration");
  EXPECT_EQ(ErrorCode(Do("PUT", "/bkt/k?tagging", "<Tagging/>")), "NotImplemented");
}

TEST_F(S3ApiTest, UnsupportedSubresourcesAreNotImplemented) {
  http::Response r = Do("GET", "/bkt?acl");
  EXPECT_EQ(r.status, 501);
  EXPECT_EQ(ErrorCode(r), "NotImplemented");
}

// --- put / get -------------------------------------------------------------------------------

TEST_F(S3ApiTest, PutThenGetReturnsBodyAndMetadata) {
  http::Response put = Put("/bkt/dir/a%20b.txt?x-id=PutObject", "hello world",
                           {{"Content-Type", "text/plain"}, {"x-amz-meta-Color", "blue"}});
  ASSERT_EQ(put.status, 200) << put.body;
  EXPECT_EQ(Header(put, "ETag"), "\"" + Md5Hex("hello world") + "\"");

  http::Response get = Do("GET", "/bkt/dir/a%20b.txt");
  ASSERT_EQ(get.status, 200);
  EXPECT_EQ(get.body, "hello world");
  EXPECT_EQ(Header(get, "Content-Type"), "text/plain");
  EXPECT_EQ(Header(get, "x-amz-meta-color"), "blue");
  EXPECT_EQ(Header(get, "ETag"), Header(put, "ETag"));
  EXPECT_TRUE(HasHeader(get, "Last-Modified"));

  http::Response head = Do("HEAD", "/bkt/dir/a%20b.txt");
  ASSERT_EQ(head.status, 200);
  EXPECT_TRUE(head.body.empty());
  EXPECT_EQ(head.head_content_length, 11u);
}

TEST_F(S3ApiTest, EncodedSlashStaysInTheKey) {
  ASSERT_EQ(Put("/bkt/a%2Fb", "x").status, 200);
  EXPECT_EQ(Do("GET", "/bkt/a/b").body, "x");
}

TEST_F(S3ApiTest, ObjectWithoutContentTypeIsBinaryOctetStream) {
  ASSERT_EQ(Put("/bkt/k", "x").status, 200);
  EXPECT_EQ(Header(Do("GET", "/bkt/k"), "Content-Type"), "binary/octet-stream");
}

TEST_F(S3ApiTest, MissingKeyAndBucketAreDistinguished) {
  http::Response key = Do("GET", "/bkt/missing");
  EXPECT_EQ(key.status, 404);
  EXPECT_EQ(ErrorCode(key), "NoSuchKey");
  http::Response bucket = Do("GET", "/nobucket/k");
  EXPECT_EQ(bucket.status, 404);
  EXPECT_EQ(ErrorCode(bucket), "NoSuchBucket");
  http::Response head = Do("HEAD", "/bkt/missing");
  EXPECT_EQ(head.status, 404);
  EXPECT_TRUE(head.body.empty());
}

TEST_F(S3ApiTest, RangeRequestsReturnPartialContent) {
  ASSERT_EQ(Put("/bkt/k", "0123456789").status, 200);
  http::Response r = Do("GET", "/bkt/k", "", {{"Range", "bytes=2-4"}});
  EXPECT_EQ(r.status, 206);
  EXPECT_EQ(r.body, "234");
  EXPECT_EQ(Header(r, "Content-Range"), "bytes 2-4/10");

  r = Do("GET", "/bkt/k", "", {{"Range", "bytes=7-"}});
  EXPECT_EQ(r.body, "789");
  r = Do("GET", "/bkt/k", "", {{"Range", "bytes=-2"}});
  EXPECT_EQ(r.body, "89");
  EXPECT_EQ(Header(r, "Content-Range"), "bytes 8-9/10");

  r = Do("HEAD", "/bkt/k", "", {{"Range", "bytes=0-0"}});
  EXPECT_EQ(r.status, 206);
  EXPECT_EQ(r.head_content_length, 1u);

  r = Do("GET", "/bkt/k", "", {{"Range", "bytes=10-"}});
  EXPECT_EQ(r.status, 416);
  EXPECT_EQ(ErrorCode(r), "InvalidRange");
  EXPECT_EQ(Header(r, "Content-Range"), "bytes */10");

  // Several ranges are not honoured: the whole object comes back.
  r = Do("GET", "/bkt/k", "", {{"Range", "bytes=0-1,4-5"}});
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "0123456789");
}

TEST_F(S3ApiTest, ConditionalGets) {
  http::Response put = Put("/bkt/k", "data");
  std::string etag = Header(put, "ETag");
  EXPECT_EQ(Do("GET", "/bkt/k", "", {{"If-None-Match", etag}}).status, 304);
  EXPECT_EQ(Do("GET", "/bkt/k", "", {{"If-None-Match", "\"other\""}}).status, 200);
  EXPECT_EQ(Do("GET", "/bkt/k", "", {{"If-Match", etag}}).status, 200);
  http::Response failed = Do("GET", "/bkt/k", "", {{"If-Match", "\"other\""}});
  EXPECT_EQ(failed.status, 412);
  EXPECT_EQ(ErrorCode(failed), "PreconditionFailed");
  EXPECT_EQ(
      Do("GET", "/bkt/k", "", {{"If-Modified-Since", "Fri, 01 Jan 2100 00:00:00 GMT"}}).status,
      304);
  EXPECT_EQ(
      Do("GET", "/bkt/k", "", {{"If-Modified-Since", "Thu, 01 Jan 1970 00:00:00 GMT"}}).status,
      200);
}

TEST_F(S3ApiTest, ContentMd5IsChecked) {
  http::Response good = Put("/bkt/k", "data", {{"Content-MD5", Base64Md5("data")}});
  EXPECT_EQ(good.status, 200) << good.body;

  http::Response bad = Put("/bkt/k2", "data", {{"Content-MD5", Base64Md5("other")}});
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(ErrorCode(bad), "BadDigest");
  EXPECT_EQ(Do("GET", "/bkt/k2").status, 404);

  http::Response invalid = Put("/bkt/k3", "data", {{"Content-MD5", "not-base64!"}});
  EXPECT_EQ(invalid.status, 400);
  EXPECT_EQ(ErrorCode(invalid), "InvalidDigest");
}

TEST_F(S3ApiTest, ChecksumHeaderIsVerifiedAndEchoed) {
  // crc32("hello") = 0x3610a686
  http::Response ok = Put("/bkt/k", "hello", {{"x-amz-checksum-crc32", "NhCmhg=="}});
  ASSERT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(Header(ok, "x-amz-checksum-crc32"), "NhCmhg==");

  http::Response bad = Put("/bkt/k2", "hellx", {{"x-amz-checksum-crc32", "NhCmhg=="}});
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(ErrorCode(bad), "BadDigest");
  EXPECT_EQ(Do("GET", "/bkt/k2").status, 404);

  http::Response sdk = Put("/bkt/k3", "hello", {{"x-amz-sdk-checksum-algorithm", "CRC32"}});
  EXPECT_EQ(Header(sdk, "x-amz-checksum-crc32"), "NhCmhg==");
}

TEST_F(S3ApiTest, SignedPayloadHashIsVerified) {
  http::Response ok = Put("/bkt/k", "hello", {{"x-amz-content-sha256", Sha256Hex("hello")}});
  EXPECT_EQ(ok.status, 200) << ok.body;
  http::Response bad = Put("/bkt/k", "hellx", {{"x-amz-content-sha256", Sha256Hex("hello")}});
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(ErrorCode(bad), "XAmzContentSHA256Mismatch");
  EXPECT_EQ(Do("GET", "/bkt/k").body, "hello");
}

TEST_F(S3ApiTest, SignedStreamingBodyIsDecoded) {
  std::string sig(64, 'f');
  std::string body = "5;chunk-signature=" + sig + "\r\nhello\r\n6;chunk-signature=" + sig +
                     "\r\n world\r\n0;chunk-signature=" + sig + "\r\n\r\n";
  http::Response r = Put("/bkt/k", body,
                         {{"x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"},
                          {"Content-Encoding", "aws-chunked"},
                          {"x-amz-decoded-content-length", "11"}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Header(r, "ETag"), "\"" + Md5Hex("hello world") + "\"");
  EXPECT_EQ(Do("GET", "/bkt/k").body, "hello world");
}

TEST_F(S3ApiTest, UnsignedTrailerChecksumIsVerifiedAndEchoed) {
  std::vector<std::pair<std::string, std::string>> headers = {
      {"x-amz-content-sha256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER"},
      {"Content-Encoding", "aws-chunked"},
      {"x-amz-trailer", "x-amz-checksum-crc32"},
      {"x-amz-decoded-content-length", "11"}};
  http::Response r = Put(
      "/bkt/k", "5\r\nhello\r\n6\r\n world\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\n\r\n", headers);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Header(r, "x-amz-checksum-crc32"), "DUoRhQ==");
  EXPECT_EQ(Do("GET", "/bkt/k").body, "hello world");

  http::Response bad =
      Put("/bkt/k2", "5\r\nhello\r\n6\r\n world\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n",
          headers);
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(ErrorCode(bad), "BadDigest");
  EXPECT_EQ(Do("GET", "/bkt/k2").status, 404);

  http::Response missing = Put("/bkt/k3", "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", headers);
  EXPECT_EQ(missing.status, 400);
}

TEST_F(S3ApiTest, ChunkedBodyShorterThanDeclaredIsIncomplete) {
  http::Response r = Put("/bkt/k", "5\r\nhello\r\n0\r\n\r\n",
                         {{"x-amz-content-sha256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER"},
                          {"x-amz-decoded-content-length", "11"}});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(ErrorCode(r), "IncompleteBody");
  r = Put("/bkt/k", "5\r\nhel", {{"x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"}});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(Do("GET", "/bkt/k").status, 404);
}

TEST_F(S3ApiTest, SinglePutOverFiveGibIsEntityTooLarge) {
  http::Response r = Put("/bkt/k", "x", {{"Content-Length", "5368709121"}});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(ErrorCode(r), "EntityTooLarge");
  r = Put("/bkt/k", "x",
          {{"x-amz-decoded-content-length", "6000000000"},
           {"x-amz-content-sha256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER"}});
  EXPECT_EQ(ErrorCode(r), "EntityTooLarge");
}

TEST_F(S3ApiTest, PrecheckRefusesOversizePutsBeforeTheBody) {
  http::Request big = MakeRequest("PUT", "/bkt/k", "", {{"Content-Length", "5368709121"}});
  auto refused = api_->Precheck(big);
  ASSERT_TRUE(refused.has_value());
  EXPECT_EQ(refused->status, 400);
  EXPECT_EQ(ErrorCode(*refused), "EntityTooLarge");
  EXPECT_EQ(Header(*refused, "x-amz-request-id"), "test-request-id");

  http::Request part =
      MakeRequest("PUT", "/bkt/k?partNumber=1&uploadId=u", "", {{"Content-Length", "5368709121"}});
  EXPECT_TRUE(api_->Precheck(part).has_value());
  http::Request ok = MakeRequest("PUT", "/bkt/k", "", {{"Content-Length", "5368709120"}});
  EXPECT_FALSE(api_->Precheck(ok).has_value());
  http::Request bucket = MakeRequest("PUT", "/bkt2", "", {{"Content-Length", "5368709121"}});
  EXPECT_FALSE(api_->Precheck(bucket).has_value());
}

TEST_F(S3ApiTest, SpooledBodyIsStreamedIntoTheStore) {
  fs::path spool = root_ / "spool";
  std::string data(5 * 1024 * 1024 + 123, '\0');
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 7);
  {
    std::ofstream out(spool, std::ios::binary);
    out.write(data.data(), static_cast<std::streamsize>(data.size()));
  }
  http::Request req = MakeRequest("PUT", "/bkt/big");
  req.body = http::RequestBody::Spooled(spool, data.size());
  http::Response r = api_->Handle(req);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Header(r, "ETag"), "\"" + Md5Hex(data) + "\"");
  int before = file_bodies_;
  EXPECT_EQ(Do("GET", "/bkt/big").body, data);
  EXPECT_EQ(file_bodies_, before + 1) << "GetObject should send the blob without copying it";
}

// --- listing ---------------------------------------------------------------------------------

TEST_F(S3ApiTest, ListV2GroupsByDelimiter) {
  for (const char* k : {"a/1", "a/2", "b", "c/x/y", "d"})
    ASSERT_EQ(Put(std::string("/bkt/") + k, "x").status, 200);
  http::Response r = Do("GET", "/bkt?list-type=2&delimiter=%2F");
  ASSERT_EQ(r.status, 200) << r.body;
  pugi::xml_node root = Xml(r);
  std::vector<std::string> keys, prefixes;
  for (pugi::xml_node c : root.children("Contents")) keys.push_back(c.child_value("Key"));
  for (pugi::xml_node c : root.children("CommonPrefixes"))
    prefixes.push_back(c.child_value("Prefix"));
  EXPECT_EQ(keys, (std::vector<std::string>{"b", "d"}));
  EXPECT_EQ(prefixes, (std::vector<std::string>{"a/", "c/"}));
  EXPECT_STREQ(root.child_value("KeyCount"), "4");
  EXPECT_STREQ(root.child_value("IsTruncated"), "false");
  EXPECT_STREQ(root.child("Contents").child_value("ETag"), ("\"" + Md5Hex("x") + "\"").c_str());

  http::Response sub = Do("GET", "/bkt?list-type=2&delimiter=/&prefix=a/");
  std::vector<std::string> subkeys;
  for (pugi::xml_node c : Xml(sub).children("Contents")) subkeys.push_back(c.child_value("Key"));
  EXPECT_EQ(subkeys, (std::vector<std::string>{"a/1", "a/2"}));
}

TEST_F(S3ApiTest, ListV2ContinuationVisitsEverythingOnce) {
  for (const char* k : {"a/1", "a/2", "b", "c/x/y", "d", "e/1"})
    ASSERT_EQ(Put(std::string("/bkt/") + k, "x").status, 200);
  int pages = 0;
  EXPECT_EQ(ListAllV2("max-keys=1&delimiter=/", &pages),
            (std::vector<std::string>{"a/", "b", "c/", "d", "e/"}));
  EXPECT_EQ(pages, 5);
  EXPECT_EQ(ListAllV2("max-keys=2", &pages),
            (std::vector<std::string>{"a/1", "a/2", "b", "c/x/y", "d", "e/1"}));
  EXPECT_EQ(pages, 3);
}

TEST_F(S3ApiTest, ListV2StartAfterAndMaxKeysZero) {
  for (const char* k : {"a", "b", "c"}) ASSERT_EQ(Put(std::string("/bkt/") + k, "x").status, 200);
  int pages = 0;
  EXPECT_EQ(ListAllV2("start-after=a", &pages), (std::vector<std::string>{"b", "c"}));
  http::Response zero = Do("GET", "/bkt?list-type=2&max-keys=0");
  ASSERT_EQ(zero.status, 200);
  EXPECT_STREQ(Xml(zero).child_value("KeyCount"), "0");
  EXPECT_EQ(Do("GET", "/bkt?list-type=2&max-keys=-1").status, 400);
  EXPECT_EQ(Do("GET", "/bkt?list-type=2&continuation-token=%25%25").status, 400);
}

TEST_F(S3ApiTest, ListV2UrlEncodingEncodesKeysAndPrefixes) {
  ASSERT_EQ(Put("/bkt/dir%20x/a%20b%2Bc", "x").status, 200);
  ASSERT_EQ(Put("/bkt/top%20level", "x").status, 200);
  http::Response r = Do("GET", "/bkt?list-type=2&encoding-type=url&delimiter=/&prefix=");
  ASSERT_EQ(r.status, 200);
  pugi::xml_node root = Xml(r);
  EXPECT_STREQ(root.child_value("EncodingType"), "url");
  EXPECT_STREQ(root.child("Contents").child_value("Key"), "top%20level");
  EXPECT_STREQ(root.child("CommonPrefixes").child_value("Prefix"), "dir%20x/");
  http::Response inner = Do("GET", "/bkt?list-type=2&encoding-type=url&prefix=dir%20x/");
  EXPECT_STREQ(Xml(inner).child("Contents").child_value("Key"), "dir%20x/a%20b%2Bc");
  EXPECT_STREQ(Xml(inner).child_value("Prefix"), "dir%20x/");
  EXPECT_EQ(Do("GET", "/bkt?list-type=2&encoding-type=base64").status, 400);
}

TEST_F(S3ApiTest, ListV1UsesMarkerAndNextMarker) {
  for (const char* k : {"a/1", "b", "c"}) ASSERT_EQ(Put(std::string("/bkt/") + k, "x").status, 200);
  http::Response r = Do("GET", "/bkt?delimiter=/&max-keys=2");
  ASSERT_EQ(r.status, 200);
  pugi::xml_node root = Xml(r);
  EXPECT_STREQ(root.child_value("IsTruncated"), "true");
  EXPECT_STREQ(root.child_value("NextMarker"), "b");
  EXPECT_STREQ(root.child("CommonPrefixes").child_value("Prefix"), "a/");
  http::Response next = Do("GET", "/bkt?delimiter=/&max-keys=2&marker=b");
  pugi::xml_node n = Xml(next);
  EXPECT_STREQ(n.child_value("IsTruncated"), "false");
  EXPECT_STREQ(n.child("Contents").child_value("Key"), "c");
  EXPECT_FALSE(n.child("NextMarker"));
  // Without a delimiter S3 sends no NextMarker; clients continue from the last key.
  EXPECT_FALSE(Xml(Do("GET", "/bkt?max-keys=1")).child("NextMarker"));
}

// --- copy / delete ---------------------------------------------------------------------------

TEST_F(S3ApiTest, CopyObjectKeepsOrReplacesMetadata) {
  ASSERT_EQ(
      Put("/bkt/src key", "payload", {{"Content-Type", "text/a"}, {"x-amz-meta-m", "1"}}).status,
      200);
  http::Response copy =
      Put("/bkt/dst", "", {{"x-amz-copy-source", "/bkt/src%20key?versionId=null"}});
  ASSERT_EQ(copy.status, 200) << copy.body;
  pugi::xml_node result = Xml(copy);
  EXPECT_EQ(std::string(result.name()), "CopyObjectResult");
  EXPECT_STREQ(result.child_value("ETag"), ("\"" + Md5Hex("payload") + "\"").c_str());
  http::Response got = Do("GET", "/bkt/dst");
  EXPECT_EQ(got.body, "payload");
  EXPECT_EQ(Header(got, "Content-Type"), "text/a");
  EXPECT_EQ(Header(got, "x-amz-meta-m"), "1");

  ASSERT_EQ(Put("/bkt/dst2", "",
                {{"x-amz-copy-source", "bkt/src%20key"},
                 {"x-amz-metadata-directive", "REPLACE"},
                 {"Content-Type", "text/b"}})
                .status,
            200);
  http::Response replaced = Do("GET", "/bkt/dst2");
  EXPECT_EQ(Header(replaced, "Content-Type"), "text/b");
  EXPECT_FALSE(HasHeader(replaced, "x-amz-meta-m"));
}

TEST_F(S3ApiTest, CopyErrors) {
  ASSERT_EQ(Put("/bkt/src", "x").status, 200);
  http::Response self = Put("/bkt/src", "", {{"x-amz-copy-source", "/bkt/src"}});
  EXPECT_EQ(self.status, 400);
  EXPECT_EQ(ErrorCode(self), "InvalidRequest");
  EXPECT_EQ(ErrorCode(Put("/bkt/d", "", {{"x-amz-copy-source", "/bkt/missing"}})), "NoSuchKey");
  EXPECT_EQ(ErrorCode(Put("/bkt/d", "", {{"x-amz-copy-source", "/bkt"}})), "InvalidArgument");
  EXPECT_EQ(ErrorCode(Put(
                "/bkt/d", "",
                {{"x-amz-copy-source", "/bkt/src"}, {"x-amz-copy-source-if-match", "\"nope\""}})),
            "PreconditionFailed");
}

TEST_F(S3ApiTest, DeleteObjectsReportsEachKey) {
  ASSERT_EQ(Put("/bkt/a", "x").status, 200);
  ASSERT_EQ(Put("/bkt/b", "x").status, 200);
  std::string body =
      R"(<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Object><Key>a</Key></Object><Object><Key>missing</Key></Object></Delete>)";
  http::Response r = Do("POST", "/bkt?delete", body, {{"Content-MD5", Base64Md5(body)}});
  ASSERT_EQ(r.status, 200) << r.body;
  std::vector<std::string> deleted;
  for (pugi::xml_node d : Xml(r).children("Deleted")) deleted.push_back(d.child_value("Key"));
  EXPECT_EQ(deleted, (std::vector<std::string>{"a", "missing"}));
  EXPECT_EQ(Do("GET", "/bkt/a").status, 404);

  std::string quiet = R"(<Delete><Quiet>true</Quiet><Object><Key>b</Key></Object></Delete>)";
  http::Response q = Do("POST", "/bkt?delete", quiet);
  ASSERT_EQ(q.status, 200);
  EXPECT_FALSE(Xml(q).child("Deleted"));
  EXPECT_EQ(Do("GET", "/bkt/b").status, 404);

  EXPECT_EQ(ErrorCode(Do("POST", "/bkt?delete", body, {{"Content-MD5", Base64Md5("x")}})),
            "BadDigest");
  EXPECT_EQ(ErrorCode(Do("POST", "/bkt?delete", "<Delete>")), "MalformedXML");
}

// --- multipart -------------------------------------------------------------------------------

class S3MultipartTest : public S3ApiTest {
 protected:
  std::string Create(const std::string& key) {
    http::Response r = Do("POST", "/bkt/" + key + "?uploads", "", {{"Content-Type", "text/x"}});
    EXPECT_EQ(r.status, 200) << r.body;
    return Xml(r).child_value("UploadId");
  }
  std::string UploadPart(const std::string& key, const std::string& id, int n, std::string data) {
    http::Response r = Put("/bkt/" + key + "?partNumber=" + std::to_string(n) + "&uploadId=" + id,
                           std::move(data));
    EXPECT_EQ(r.status, 200) << r.body;
    return Header(r, "ETag");
  }
  std::string CompleteBody(const std::vector<std::pair<int, std::string>>& parts) {
    std::string body = "<CompleteMultipartUpload>";
    for (const auto& [n, etag] : parts) {
      body += "<Part><PartNumber>" + std::to_string(n) + "</PartNumber><ETag>" + etag +
              "</ETag></Part>";
    }
    return body + "</CompleteMultipartUpload>";
  }
};

TEST_F(S3MultipartTest, CompleteJoinsPartsWithMultipartEtag) {
  std::string id = Create("mp");
  ASSERT_FALSE(id.empty());
  std::string part1(5 * 1024 * 1024, 'a');
  std::string e1 = UploadPart("mp", id, 1, part1);
  std::string e2 = UploadPart("mp", id, 2, "tail");
  EXPECT_EQ(e1, "\"" + Md5Hex(part1) + "\"");

  http::Response uploads = Do("GET", "/bkt?uploads");
  ASSERT_EQ(uploads.status, 200) << uploads.body;
  EXPECT_STREQ(Xml(uploads).child("Upload").child_value("UploadId"), id.c_str());

  http::Response parts = Do("GET", "/bkt/mp?uploadId=" + id);
  ASSERT_EQ(parts.status, 200) << parts.body;
  std::vector<std::string> sizes;
  for (pugi::xml_node p : Xml(parts).children("Part")) sizes.push_back(p.child_value("Size"));
  EXPECT_EQ(sizes, (std::vector<std::string>{std::to_string(part1.size()), "4"}));

  http::Response done = Do("POST", "/bkt/mp?uploadId=" + id, CompleteBody({{1, e1}, {2, e2}}));
  ASSERT_EQ(done.status, 200) << done.body;
  std::string raw_md5s;
  for (const std::string& part : {part1, std::string("tail")}) {
    Md5Hasher h;
    h.Update(part);
    raw_md5s += h.FinishRaw();
  }
  std::string expected = "\"" + Md5Hex(raw_md5s) + "-2\"";
  EXPECT_STREQ(Xml(done).child_value("ETag"), expected.c_str());
  http::Response got = Do("GET", "/bkt/mp");
  EXPECT_EQ(got.body, part1 + "tail");
  EXPECT_EQ(Header(got, "Content-Type"), "text/x");
  EXPECT_EQ(Header(got, "ETag"), expected);
  EXPECT_FALSE(Xml(Do("GET", "/bkt?uploads")).child("Upload"));
}

TEST_F(S3MultipartTest, CompleteRejectsSmallPartsAndBadOrder) {
  std::string id = Create("mp");
  std::string e1 = UploadPart("mp", id, 1, "small");
  std::string e2 = UploadPart("mp", id, 2, "tail");
  http::Response order = Do("POST", "/bkt/mp?uploadId=" + id, CompleteBody({{2, e2}, {1, e1}}));
  EXPECT_EQ(order.status, 400);
  EXPECT_EQ(ErrorCode(order), "InvalidPartOrder");
  http::Response small = Do("POST", "/bkt/mp?uploadId=" + id, CompleteBody({{1, e1}, {2, e2}}));
  EXPECT_EQ(small.status, 400);
  EXPECT_EQ(ErrorCode(small), "EntityTooSmall");
  http::Response wrong = Do("POST", "/bkt/mp?uploadId=" + id, CompleteBody({{1, "\"00\""}}));
  EXPECT_EQ(ErrorCode(wrong), "InvalidPart");
}

TEST_F(S3MultipartTest, AbortForgetsTheUpload) {
  std::string id = Create("mp");
  UploadPart("mp", id, 1, "x");
  EXPECT_EQ(Do("DELETE", "/bkt/mp?uploadId=" + id).status, 204);
  http::Response r = Do("GET", "/bkt/mp?uploadId=" + id);
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(ErrorCode(r), "NoSuchUpload");
  EXPECT_EQ(ErrorCode(Put("/bkt/mp?partNumber=1&uploadId=" + id, "x")), "NoSuchUpload");
}

TEST_F(S3MultipartTest, PartNumberMustBeInRange) {
  std::string id = Create("mp");
  EXPECT_EQ(ErrorCode(Put("/bkt/mp?partNumber=0&uploadId=" + id, "x")), "InvalidArgument");
  EXPECT_EQ(ErrorCode(Put("/bkt/mp?partNumber=10001&uploadId=" + id, "x")), "InvalidArgument");
}

TEST_F(S3MultipartTest, UploadPartCopyTakesASourceRange) {
  ASSERT_EQ(Put("/bkt/src", "0123456789").status, 200);
  std::string id = Create("mp");
  http::Response r =
      Put("/bkt/mp?partNumber=1&uploadId=" + id, "",
          {{"x-amz-copy-source", "/bkt/src"}, {"x-amz-copy-source-range", "bytes=2-5"}});
  ASSERT_EQ(r.status, 200) << r.body;
  std::string etag = Xml(r).child_value("ETag");
  EXPECT_EQ(etag, "\"" + Md5Hex("2345") + "\"");
  ASSERT_EQ(Do("POST", "/bkt/mp?uploadId=" + id, CompleteBody({{1, etag}})).status, 200);
  EXPECT_EQ(Do("GET", "/bkt/mp").body, "2345");
}

}  // namespace
}  // namespace hearth::s3api
