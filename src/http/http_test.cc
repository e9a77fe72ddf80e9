#include <filesystem>
#include <fstream>
#include <utility>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <fcntl.h>
#include <gtest/gtest.h>

#include "common/crypto.h"
#include "common/ids.h"
#include "http/http_server.h"
#include "http/sigv4.h"

namespace hearth::http {
namespace {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

TEST(SigV4, ParsesTheCredentialScopeOfAnAuthorizationHeader) {
  auto c = ParseSigV4Authorization(
      "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261128/us-east-1/sagemaker/aws4_request, "
      "SignedHeaders=host;x-amz-date;x-amz-target, Signature=abc123");
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->access_key_id, "AKIDEXAMPLE");
  EXPECT_EQ(c->region, "us-east-1");
  EXPECT_EQ(c->service, "sagemaker");
  EXPECT_EQ(c->signed_headers.size(), 3u);
  EXPECT_EQ(c->signature, "abc123");
  EXPECT_FALSE(ParseSigV4Authorization("AWS AKID:sig").has_value());
  EXPECT_FALSE(ParseSigV4Authorization("AWS4-HMAC-SHA256 Credential=a/b/c").has_value());
}

// The worked example of AWS's SigV4 documentation (IAM ListUsers, 2015-08-30): each step's
// published value.
TEST(SigV4, SignsTheDocumentedExampleRequest) {
  CanonicalRequestInput in;
  in.method = "GET";
  in.canonical_uri = "/";
  in.query = {{"Version", "2010-05-08"}, {"Action", "ListUsers"}};
  in.headers = {{"host", "iam.amazonaws.com"},
                {"content-type", "application/x-www-form-urlencoded; charset=utf-8"},
                {"x-amz-date", "20150830T123600Z"}};
  in.signed_headers = {"content-type", "host", "x-amz-date"};
  in.payload_sha256_hex = Sha256Hex("");
  std::string canonical = CanonicalRequest(in);
  EXPECT_EQ(Sha256Hex(canonical),
            "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59");
  auto scope = ParseSigV4CredentialScope("AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request");
  ASSERT_TRUE(scope.has_value());
  std::string to_sign = StringToSign("20150830T123600Z", *scope, canonical);
  EXPECT_EQ(SigV4Signature("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", *scope, to_sign),
            "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7");
}

TEST(SigV4, CanonicalHeadersTrimAndCollapseSpaces) {
  CanonicalRequestInput in{.method = "PUT", .canonical_uri = "/b/k"};
  in.headers = {{"x-amz-meta-a", "  one   two "}, {"host", "h"}};
  in.signed_headers = {"host", "x-amz-meta-a"};
  in.payload_sha256_hex = "UNSIGNED-PAYLOAD";
  EXPECT_EQ(CanonicalRequest(in),
            "PUT\n/b/k\n\nhost:h\nx-amz-meta-a:one two\n\nhost;x-amz-meta-a\nUNSIGNED-PAYLOAD");
}

TEST(Uri, PercentDecodingRejectsBadEscapesAndEncodingRoundTrips) {
  std::string out;
  EXPECT_TRUE(PercentDecode("a%20b%2Fc", &out));
  EXPECT_EQ(out, "a b/c");
  EXPECT_FALSE(PercentDecode("a%2", &out));
  EXPECT_EQ(UriEncode("a b/c~", true), "a%20b/c~");
  EXPECT_EQ(UriEncode("a b/c", false), "a%20b%2Fc");
}

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("hearth-http-" + NewUuid());
    std::filesystem::create_directories(dir_);
    HttpHandlers handlers;
    handlers.precheck = [](const Request& r) -> std::optional<Response> {
      if (r.path == "/refuse") {
        Response res;
        res.status = 400;
        res.body = "refused";
        return res;
      }
      return std::nullopt;
    };
    handlers.handle = [this](Request& r) {
      Response res;
      if (r.path == "/nocontent") {
        res.status = 204;
        res.body = "never sent";  // a 204 has no body (RFC 9110 15.3.5)
        return res;
      }
      if (r.path == "/file") {
        auto fd = std::make_shared<OwnedFd>(::open((dir_ / "blob").c_str(), O_RDONLY));
        res.file = FileBody{fd, 2, 3};
        return res;
      }
      auto body = r.body.ReadAll();
      res.body = r.method + " " + r.path + " q=" + r.QueryParam("q").value_or("-") +
                 " spooled=" + (r.body.spooled() ? "1" : "0") +
                 " size=" + std::to_string(r.body.size()) +
                 " md=" + std::to_string(body.ok() ? body->size() : 0);
      return res;
    };
    HttpServerOptions opts{
        .listen = "127.0.0.1:0", .spool_dir = dir_, .in_memory_body_limit = 1000};
    auto s = HttpServer::Start(opts, handlers);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    server_ = std::move(s).value();
    port_ = static_cast<unsigned short>(std::stoi(server_->address().substr(10)));
  }
  void TearDown() override {
    server_.reset();
    std::filesystem::remove_all(dir_);
  }

  bhttp::response<bhttp::string_body> Send(tcp::socket& sock,
                                           bhttp::request<bhttp::string_body> req) {
    req.set(bhttp::field::host, "localhost");
    req.prepare_payload();
    bhttp::write(sock, req);
    boost::beast::flat_buffer buf;
    bhttp::response<bhttp::string_body> res;
    bhttp::read(sock, buf, res);
    return res;
  }

  tcp::socket Connect() {
    tcp::socket sock(io_);
    sock.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_));
    return sock;
  }

  std::filesystem::path dir_;
  std::unique_ptr<HttpServer> server_;
  unsigned short port_ = 0;
  asio::io_context io_;
};

TEST_F(HttpServerTest, ServesSeveralRequestsOnOneKeepAliveConnection) {
  tcp::socket sock = Connect();
  for (int i = 0; i < 3; ++i) {
    bhttp::request<bhttp::string_body> req{bhttp::verb::post, "/a%20b?q=x%2By", 11};
    req.body() = "hello";
    auto res = Send(sock, req);
    EXPECT_EQ(res.result_int(), 200);
    EXPECT_EQ(res.body(), "POST /a b q=x+y spooled=0 size=5 md=5");
  }
}

TEST_F(HttpServerTest, SpoolsLargeBodiesToAFileAndRemovesIt) {
  tcp::socket sock = Connect();
  bhttp::request<bhttp::string_body> req{bhttp::verb::put, "/big", 11};
  req.body() = std::string(5000, 'x');
  auto res = Send(sock, req);
  EXPECT_EQ(res.body(), "PUT /big q=- spooled=1 size=5000 md=5000");
  // The spool file is gone once the request is answered.
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir_), {}), 0);
}

TEST_F(HttpServerTest, PrecheckRefusesBeforeTheBodyAndClosesTheConnection) {
  tcp::socket sock = Connect();
  bhttp::request<bhttp::string_body> req{bhttp::verb::put, "/refuse", 11};
  req.set(bhttp::field::expect, "100-continue");
  req.set(bhttp::field::content_length, "100000");
  bhttp::request_serializer<bhttp::string_body> sr{req};
  req.set(bhttp::field::host, "localhost");
  bhttp::write_header(sock, sr);
  boost::beast::flat_buffer buf;
  bhttp::response<bhttp::string_body> res;
  bhttp::read(sock, buf, res);
  EXPECT_EQ(res.result_int(), 400);
  EXPECT_EQ(res.body(), "refused");
}

TEST_F(HttpServerTest, SendsAFileRegionAsTheBody) {
  std::ofstream(dir_ / "blob") << "0123456789";
  tcp::socket sock = Connect();
  auto res = Send(sock, bhttp::request<bhttp::string_body>{bhttp::verb::get, "/file", 11});
  EXPECT_EQ(res.body(), "234");
  EXPECT_EQ(res[bhttp::field::content_length], "3");
}

TEST_F(HttpServerTest, ReadsAChunkedBodyArrivingByteByByte) {
  tcp::socket sock = Connect();
  sock.set_option(tcp::no_delay(true));  // each byte its own segment: the parser resumes
  const std::string wire =
      "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
  for (char c : wire) asio::write(sock, asio::buffer(&c, 1));
  boost::beast::flat_buffer buf;
  bhttp::response<bhttp::string_body> res;
  bhttp::read(sock, buf, res);
  EXPECT_EQ(res.body(), "POST /c q=- spooled=0 size=11 md=11");
  // The connection is still in step: the next request gets its own answer.
  auto next = Send(sock, bhttp::request<bhttp::string_body>{bhttp::verb::get, "/n", 11});
  EXPECT_EQ(next.body(), "GET /n q=- spooled=0 size=0 md=0");
}

TEST_F(HttpServerTest, ANoContentAnswerHasNoBodyAndKeepsTheConnectionInStep) {
  tcp::socket sock = Connect();
  // Raw bytes back, so that a stray body or Content-Length would show.
  bhttp::request<bhttp::string_body> req{bhttp::verb::get, "/nocontent", 11};
  req.set(bhttp::field::host, "localhost");
  bhttp::write(sock, req);
  std::string head(512, '\0');
  head.resize(sock.read_some(asio::buffer(head)));
  EXPECT_EQ(head.rfind("HTTP/1.1 204 No Content\r\n", 0), 0u) << head;
  EXPECT_EQ(head.find("Content-Length"), std::string::npos) << head;
  EXPECT_EQ(head.find("never sent"), std::string::npos) << head;
  EXPECT_NE(head.find("\r\nServer: Hearth\r\n"), std::string::npos) << head;
  auto next = Send(sock, bhttp::request<bhttp::string_body>{bhttp::verb::get, "/n", 11});
  EXPECT_EQ(next.body(), "GET /n q=- spooled=0 size=0 md=0");
}

TEST_F(HttpServerTest, AnswersHttp10InItsVersionAndClosesUnlessAskedToKeepAlive) {
  for (bool keep_alive : {false, true}) {
    tcp::socket sock = Connect();
    bhttp::request<bhttp::string_body> req{bhttp::verb::get, "/old", 10};
    req.keep_alive(keep_alive);
    auto res = Send(sock, req);
    EXPECT_EQ(res.version(), 10);
    EXPECT_EQ(res.body(), "GET /old q=- spooled=0 size=0 md=0");
    EXPECT_EQ(res.keep_alive(), keep_alive);
    if (!keep_alive) {
      // The server closed its side: the next read sees the end of the stream.
      boost::system::error_code ec;
      char c;
      EXPECT_EQ(sock.read_some(asio::buffer(&c, 1), ec), 0u);
      EXPECT_EQ(ec, asio::error::eof);
    }
  }
}

}  // namespace
}  // namespace hearth::http
