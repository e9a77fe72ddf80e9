#include "s3api/s3_api.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstring>
#include <exception>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include <time.h>

#include "common/clock.h"
#include "common/crypto.h"
#include "s3api/aws_chunked.h"
#include "s3api/byte_range.h"
#include "s3api/checksums.h"
#include "s3api/s3_errors.h"
#include "s3api/s3_xml.h"

namespace hearth::s3api {

namespace {

using storage::ObjectInfo;
using storage::ObjectStore;
using Sink = std::function<Status(std::string_view)>;

// Pieces in which a body is read from memory or its spool file and pushed to the store.
constexpr std::size_t kBodyPieceBytes = 2 * 1024 * 1024;
// XML request bodies (Delete of 1000 keys of 1 KiB each fits) are read whole; cap them.
constexpr std::size_t kMaxXmlBodyBytes = 2 * 1024 * 1024;
// UploadPartCopy copies through memory in pieces of this size.
constexpr std::size_t kCopyPieceBytes = 8 * 1024 * 1024;
constexpr int kMaxListKeys = 1000;
constexpr std::string_view kOwnerId = "hearth";
constexpr std::string_view kMetaPrefix = "x-amz-meta-";

// Subresources Hearth does not implement. Anything else in the query (x-id=PutObject, which
// current botocore adds to every request, say) is ignored, as S3 ignores unknown parameters.
constexpr std::string_view kUnsupportedSubresources[] = {"acl",
                                                         "policy",
                                                         "policyStatus",
                                                         "tagging",
                                                         "cors",
                                                         "lifecycle",
                                                         "versioning",
                                                         "versions",
                                                         "website",
                                                         "encryption",
                                                         "replication",
                                                         "logging",
                                                         "notification",
                                                         "accelerate",
                                                         "requestPayment",
                                                         "object-lock",
                                                         "ownershipControls",
                                                         "publicAccessBlock",
                                                         "intelligent-tiering",
                                                         "inventory",
                                                         "metrics",
                                                         "analytics",
                                                         "retention",
                                                         "legal-hold",
                                                         "torrent",
                                                         "restore",
                                                         "select",
                                                         "attributes"};

// ---------------------------------------------------------------------------------------------
// Small helpers

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> SplitComma(std::string_view s) {
  std::vector<std::string_view> out;
  while (true) {
    auto comma = s.find(',');
    std::string_view item = Trim(s.substr(0, comma));
    if (!item.empty()) out.push_back(item);
    if (comma == std::string_view::npos) break;
    s.remove_prefix(comma + 1);
  }
  return out;
}

std::optional<std::uint64_t> ParseUint(std::string_view s) {
  s = Trim(s);
  if (s.empty()) return std::nullopt;
  std::uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

std::string Quoted(std::string_view etag) { return "\"" + std::string(etag) + "\""; }

std::string_view Unquoted(std::string_view etag) {
  if (etag.size() >= 2 && etag.substr(0, 2) == "W/") etag.remove_prefix(2);
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') {
    etag = etag.substr(1, etag.size() - 2);
  }
  return etag;
}

Status Error(std::string_view s3_code, std::string message) {
  return InvalidArgument(std::move(message), std::string(s3_code));
}

Status NotImplementedError(std::string what) {
  return Unimplemented(std::move(what) + " is not implemented by Hearth", "NotImplemented");
}

// "Sat, 28 Nov 2026 04:23:17 GMT" -> epoch seconds; nullopt when not an IMF-fixdate.
std::optional<std::int64_t> ParseHttpDate(std::string_view text) {
  std::string s(Trim(text));
  struct tm tm {};
  const char* end = strptime(s.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (end == nullptr || *end != '\0') return std::nullopt;
  return static_cast<std::int64_t>(timegm(&tm));
}

bool EtagListMatches(std::string_view list, std::string_view etag) {
  for (std::string_view item : SplitComma(list)) {
    if (item == "*" || Unquoted(item) == etag) return true;
  }
  return false;
}

http::Response XmlOk(const XmlResponse& doc) {
  http::Response response;
  response.SetHeader("Content-Type", "application/xml");
  response.body = doc.ToString();
  return response;
}

void AddOwner(pugi::xml_node parent, std::string_view element = "Owner") {
  pugi::xml_node owner = AddElement(parent, element);
  AddText(owner, "ID", kOwnerId);
  AddText(owner, "DisplayName", kOwnerId);
}

// The region a client believes it talks to. Answering with it (rather than a fixed one) keeps
// botocore's region-redirect logic from ever deciding the bucket lives elsewhere.
std::string ClientRegion(const http::Request& request) {
  if (request.credential && !request.credential->region.empty()) {
    return request.credential->region;
  }
  return "us-east-1";
}

// ---------------------------------------------------------------------------------------------
// Request bodies

Result<std::optional<std::string>> ContentMd5(const http::Headers& headers) {
  auto value = headers.Get("content-md5");
  if (!value) return std::optional<std::string>();
  std::string raw;
  if (!Base64Decode(Trim(*value), &raw) || raw.size() != 16) {
    return Error("InvalidDigest", "The Content-MD5 you specified was invalid");
  }
  return std::optional<std::string>(std::move(raw));
}

Result<storage::PutOptions> PutOptionsFrom(const http::Headers& headers, bool with_md5) {
  storage::PutOptions options;
  options.content_type = headers.GetOr("content-type", "");
  for (const auto& [name, value] : headers.all()) {
    if (name.size() > kMetaPrefix.size() && name.compare(0, kMetaPrefix.size(), kMetaPrefix) == 0) {
      options.user_metadata[name.substr(kMetaPrefix.size())] = value;
    }
  }
  if (with_md5) {
    ASSIGN_OR_RETURN(options.expected_md5, ContentMd5(headers));
  }
  return options;
}

bool IsHex64(std::string_view s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
         });
}

std::size_t DigestBytes(ChecksumAlgorithm algorithm) {
  switch (algorithm) {
    case ChecksumAlgorithm::kCrc32:
    case ChecksumAlgorithm::kCrc32c:
      return 4;
    case ChecksumAlgorithm::kCrc64Nvme:
      return 8;
    case ChecksumAlgorithm::kSha1:
      return 20;
    case ChecksumAlgorithm::kSha256:
      return 32;
  }
  return 0;
}

Status CheckChecksumValue(ChecksumAlgorithm algorithm, std::string_view value) {
  std::string raw;
  if (!Base64Decode(value, &raw) || raw.size() != DigestBytes(algorithm)) {
    return Error("InvalidRequest",
                 "Value for " + ChecksumHeaderName(algorithm) + " header is invalid.");
  }
  return Status::Ok();
}

std::string AlgorithmLabel(ChecksumAlgorithm algorithm) {
  std::string name = ChecksumHeaderName(algorithm).substr(std::strlen("x-amz-checksum-"));
  for (char& c : name) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return name;
}

struct ExpectedChecksum {
  Checksummer sum;
  std::optional<std::string> value;  // what the client claims; none: compute and echo only
  bool in_trailer = false;
};

// Streams the payload of `request`'s body into `sink`, undoing aws-chunked framing, and checks
// every digest the client sent: x-amz-checksum-* (header or trailer), the signed payload hash
// (x-amz-content-sha256) and, when `verify_md5`, Content-MD5 (otherwise the store checks it).
// On success appends the checksums to echo back to `echo` as (header, value).
Status PumpBody(const http::Request& request, bool verify_md5, const Sink& sink,
                std::vector<std::pair<std::string, std::string>>* echo) {
  const http::Headers& headers = request.headers;
  std::string content_sha = headers.GetOr("x-amz-content-sha256", "");
  bool chunked =
      content_sha.rfind("STREAMING-", 0) == 0 ||
      Lower(headers.GetOr("content-encoding", "")).find("aws-chunked") != std::string::npos;

  std::optional<std::uint64_t> decoded_length;
  if (chunked) {
    if (auto v = headers.Get("x-amz-decoded-content-length")) {
      decoded_length = ParseUint(*v);
      if (!decoded_length) {
        return Error("InvalidArgument", "x-amz-decoded-content-length is not a number");
      }
    }
  }

  std::vector<ExpectedChecksum> checks;
  auto find_check = [&](ChecksumAlgorithm a) -> ExpectedChecksum* {
    for (auto& c : checks) {
      if (c.sum.algorithm() == a) return &c;
    }
    return nullptr;
  };
  for (const auto& [name, value] : headers.all()) {
    auto algorithm = ChecksumAlgorithmFromHeader(name);
    if (!algorithm) continue;
    std::string v(Trim(value));
    RETURN_IF_ERROR(CheckChecksumValue(*algorithm, v));
    if (find_check(*algorithm) != nullptr) {
      return Error("InvalidRequest", "Expecting a single x-amz-checksum- header");
    }
    checks.push_back({Checksummer(*algorithm), std::move(v), false});
  }
  if (auto trailer = headers.Get("x-amz-trailer")) {
    for (std::string_view name : SplitComma(*trailer)) {
      auto algorithm = ChecksumAlgorithmFromHeader(name);
      if (!algorithm) {
        return Error("InvalidRequest",
                     "The value specified in the x-amz-trailer header is not "
                     "supported: " +
                         std::string(name));
      }
      if (find_check(*algorithm) != nullptr) {
        return Error("InvalidRequest", "Expecting a single x-amz-checksum- header");
      }
      checks.push_back({Checksummer(*algorithm), std::nullopt, true});
    }
  }
  if (auto name = headers.Get("x-amz-sdk-checksum-algorithm")) {
    auto algorithm = ChecksumAlgorithmFromName(Trim(*name));
    if (!algorithm) {
      return Error("InvalidRequest", "Checksum algorithm provided is unsupported: " + *name);
    }
    if (find_check(*algorithm) == nullptr) {
      checks.push_back({Checksummer(*algorithm), std::nullopt, false});
    }
  }

  std::optional<Checksummer> payload_sha;  // signed, unchunked payloads name their SHA-256
  if (!chunked && IsHex64(content_sha)) payload_sha.emplace(ChecksumAlgorithm::kSha256);

  std::optional<std::string> md5_expected;
  if (verify_md5) {
    ASSIGN_OR_RETURN(md5_expected, ContentMd5(headers));
  }
  Md5Hasher md5;

  Sink payload_sink = [&](std::string_view data) -> Status {
    for (auto& c : checks) c.sum.Update(data);
    if (md5_expected) md5.Update(data);
    return sink(data);
  };
  AwsChunkedDecoder decoder;
  RETURN_IF_ERROR(request.body.ForEachChunk(kBodyPieceBytes, [&](std::string_view raw) {
    if (payload_sha) payload_sha->Update(raw);
    return chunked ? decoder.Feed(raw, payload_sink) : payload_sink(raw);
  }));

  if (chunked) {
    RETURN_IF_ERROR(decoder.Finish());
    if (decoded_length && *decoded_length != decoder.decoded_size()) {
      return Error("IncompleteBody",
                   "You did not provide the number of bytes specified by the "
                   "x-amz-decoded-content-length header (" +
                       std::to_string(*decoded_length) + " declared, " +
                       std::to_string(decoder.decoded_size()) + " sent)");
    }
    for (auto& c : checks) {
      if (!c.in_trailer) continue;
      for (const auto& [name, value] : decoder.trailers()) {
        if (name == ChecksumHeaderName(c.sum.algorithm())) c.value = value;
      }
    }
  }
  for (auto& c : checks) {
    if (c.in_trailer && !c.value) {
      return Error("InvalidRequest", "The trailer " + ChecksumHeaderName(c.sum.algorithm()) +
                                         " announced in x-amz-trailer was not sent");
    }
    std::string computed = c.sum.FinishBase64();
    if (c.value && Trim(*c.value) != computed) {
      return Error("BadDigest", "The " + AlgorithmLabel(c.sum.algorithm()) +
                                    " you specified did not match the calculated checksum.");
    }
    echo->emplace_back(ChecksumHeaderName(c.sum.algorithm()), std::move(computed));
  }
  if (payload_sha) {
    std::string raw;
    if (!Base64Decode(payload_sha->FinishBase64(), &raw) ||
        Lower(HexEncode(raw)) != Lower(content_sha)) {
      return Error("XAmzContentSHA256Mismatch",
                   "The provided 'x-amz-content-sha256' header does not match what was computed.");
    }
  }
  if (md5_expected && md5.FinishRaw() != *md5_expected) {
    return Error("BadDigest", "The Content-MD5 you specified did not match what we received.");
  }
  return Status::Ok();
}

// Small XML request bodies, through the same decoding and digest checks as object bodies.
Result<std::string> ReadXmlBody(const http::Request& request) {
  std::string body;
  std::vector<std::pair<std::string, std::string>> echo;
  RETURN_IF_ERROR(PumpBody(
      request, /*verify_md5=*/true,
      [&](std::string_view data) -> Status {
        if (body.size() + data.size() > kMaxXmlBodyBytes) {
          return Error("MalformedXML", "The XML request body is too large");
        }
        body.append(data);
        return Status::Ok();
      },
      &echo));
  return body;
}

Status CheckSinglePutSize(const http::Request& request) {
  std::uint64_t declared = request.body.size();
  for (const char* header : {"content-length", "x-amz-decoded-content-length"}) {
    if (auto v = request.headers.Get(header)) {
      if (auto n = ParseUint(*v)) declared = std::max(declared, *n);
    }
  }
  if (declared > kMaxSinglePutBytes) {
    return Error("EntityTooLarge",
                 "Your proposed upload exceeds the maximum allowed object size (5 GiB per PUT; "
                 "use a multipart upload)");
  }
  return Status::Ok();
}

// Streams the body into `writer` and commits it. The writer is discarded (nothing stored) on
// any failure before Commit().
Result<ObjectInfo> WriteBody(const http::Request& request, storage::ObjectWriter& writer,
                             std::vector<std::pair<std::string, std::string>>* echo) {
  RETURN_IF_ERROR(PumpBody(
      request, /*verify_md5=*/false, [&](std::string_view data) { return writer.Append(data); },
      echo));
  return writer.Commit();
}

// ---------------------------------------------------------------------------------------------
// The request being served

struct Call {
  ObjectStore& store;
  const http::Request& request;
  std::string bucket;
  std::string key;

  const http::Headers& headers() const { return request.headers; }
  std::optional<std::string> Query(std::string_view name) const { return request.QueryParam(name); }
  bool HasQuery(std::string_view name) const { return request.HasQueryParam(name); }
};

// Splits the request path into bucket and key. The raw path is split before decoding so that
// an encoded '/' ("%2F") in a key stays part of the key; virtual-hosted requests
// ("<bucket>.localhost") carry the bucket in Host.
Status ParseTarget(Call& call) {
  const http::Request& request = call.request;
  std::string_view path = request.raw_path.empty() ? request.path : request.raw_path;
  bool encoded = !request.raw_path.empty();
  auto decode = [&](std::string_view in, std::string* out) -> Status {
    if (!encoded) {
      *out = std::string(in);
      return Status::Ok();
    }
    if (!http::PercentDecode(in, out))
      return Error("InvalidURI", "Couldn't parse the specified URI.");
    return Status::Ok();
  };
  if (!path.empty() && path.front() == '/') path.remove_prefix(1);

  std::string host = Lower(request.headers.GetOr("host", ""));
  host =
      host.substr(0, host.rfind(':') == std::string::npos || host.back() == ']' ? host.size()
                                                                                : host.rfind(':'));
  constexpr std::string_view kLocalhostSuffix = ".localhost";
  if (host.size() > kLocalhostSuffix.size() &&
      host.compare(host.size() - kLocalhostSuffix.size(), kLocalhostSuffix.size(),
                   kLocalhostSuffix) == 0) {
    call.bucket = host.substr(0, host.size() - kLocalhostSuffix.size());
    return decode(path, &call.key);
  }

  auto slash = path.find('/');
  RETURN_IF_ERROR(decode(path.substr(0, slash), &call.bucket));
  if (slash != std::string_view::npos) RETURN_IF_ERROR(decode(path.substr(slash + 1), &call.key));
  return Status::Ok();
}

std::optional<std::string> UnsupportedSubresource(const Call& call) {
  for (std::string_view name : kUnsupportedSubresources) {
    if (call.HasQuery(name)) return std::string(name);
  }
  return std::nullopt;
}

Result<int> MaxItems(const Call& call, std::string_view param) {
  auto v = call.Query(param);
  if (!v) return kMaxListKeys;
  auto n = ParseUint(*v);
  if (!n)
    return Error("InvalidArgument", "Provided " + std::string(param) +
                                        " is not a valid "
                                        "non-negative integer");
  return static_cast<int>(std::min<std::uint64_t>(*n, kMaxListKeys));
}

Result<bool> UrlEncodingRequested(const Call& call) {
  auto v = call.Query("encoding-type");
  if (!v) return false;
  if (Lower(*v) != "url")
    return Error("InvalidArgument", "Invalid Encoding Method specified in Request");
  return true;
}

Result<int> PartNumber(const Call& call) {
  auto n = ParseUint(call.Query("partNumber").value_or(""));
  if (!n || *n < 1 || *n > 10000) {
    return Error("InvalidArgument",
                 "Part number must be an integer between 1 and 10000, inclusive");
  }
  return static_cast<int>(*n);
}

void SetObjectHeaders(const ObjectInfo& info, http::Response* response) {
  response->SetHeader("ETag", Quoted(info.etag));
  response->SetHeader("Last-Modified", FormatHttpDate(info.last_modified_millis));
  response->SetHeader("Accept-Ranges", "bytes");
  response->SetHeader("Content-Type",
                      info.content_type.empty() ? "binary/octet-stream" : info.content_type);
  for (const auto& [name, value] : info.user_metadata) {
    response->headers.emplace_back(std::string(kMetaPrefix) + name, value);
  }
}

// ---------------------------------------------------------------------------------------------
// Service and bucket operations

Result<http::Response> ListBuckets(Call& call) {
  ASSIGN_OR_RETURN(std::vector<storage::BucketInfo> buckets, call.store.ListBuckets());
  std::sort(buckets.begin(), buckets.end(),
            [](const auto& a, const auto& b) { return a.name < b.name; });
  std::string prefix = call.Query("prefix").value_or("");
  ASSIGN_OR_RETURN(int max_buckets, MaxItems(call, "max-buckets"));
  if (!call.HasQuery("max-buckets")) max_buckets = 10000;  // unpaginated by default, as S3
  std::string after;
  if (auto token = call.Query("continuation-token")) {
    if (!Base64Decode(*token, &after)) {
      return Error("InvalidArgument", "The continuation token provided is incorrect");
    }
  }
  XmlResponse doc("ListAllMyBucketsResult");
  AddOwner(doc.root());
  pugi::xml_node list = AddElement(doc.root(), "Buckets");
  int count = 0;
  std::string last;
  bool truncated = false;
  for (const auto& bucket : buckets) {
    if (bucket.name.compare(0, prefix.size(), prefix) != 0) continue;
    if (!after.empty() && bucket.name <= after) continue;
    if (count == max_buckets) {
      truncated = true;
      break;
    }
    pugi::xml_node b = AddElement(list, "Bucket");
    AddText(b, "Name", bucket.name);
    AddText(b, "CreationDate", FormatIso8601Millis(bucket.creation_millis));
    AddText(b, "BucketRegion", ClientRegion(call.request));
    last = bucket.name;
    ++count;
  }
  if (truncated) AddText(doc.root(), "ContinuationToken", Base64Encode(last));
  if (call.HasQuery("prefix")) AddText(doc.root(), "Prefix", prefix);
  return XmlOk(doc);
}

Result<http::Response> CreateBucket(Call& call) {
  ASSIGN_OR_RETURN(std::string body, ReadXmlBody(call.request));
  ASSIGN_OR_RETURN(std::string location, ParseCreateBucketConfiguration(body));
  (void)location;  // accepted and ignored: every bucket lives on this machine
  RETURN_IF_ERROR(call.store.CreateBucket(call.bucket));
  http::Response response;
  response.SetHeader("Location", "/" + call.bucket);
  return response;
}

Result<http::Response> HeadBucket(Call& call) {
  ASSIGN_OR_RETURN(storage::BucketInfo info, call.store.HeadBucket(call.bucket));
  (void)info;
  http::Response response;
  response.SetHeader("x-amz-bucket-region", ClientRegion(call.request));
  response.head_content_length = 0;
  return response;
}

Result<http::Response> DeleteBucket(Call& call) {
  RETURN_IF_ERROR(call.store.DeleteBucket(call.bucket));
  http::Response response;
  response.status = 204;
  return response;
}

Result<http::Response> GetBucketLocation(Call& call) {
  ASSIGN_OR_RETURN(storage::BucketInfo info, call.store.HeadBucket(call.bucket));
  (void)info;
  XmlResponse doc("LocationConstraint");
  std::string region = ClientRegion(call.request);
  // S3 answers an empty constraint for us-east-1.
  if (region != "us-east-1") doc.root().append_child(pugi::node_pcdata).set_value(region.c_str());
  return XmlOk(doc);
}

Result<http::Response> GetBucketTagging(Call& call) {
  ASSIGN_OR_RETURN(storage::BucketInfo info, call.store.HeadBucket(call.bucket));
  (void)info;
  return Status(StatusCode::kNotFound, "The TagSet does not exist", "NoSuchTagSet");
}

Result<http::Response> GetBucketVersioning(Call& call) {
  ASSIGN_OR_RETURN(storage::BucketInfo info, call.store.HeadBucket(call.bucket));
  (void)info;
  XmlResponse doc("VersioningConfiguration");  // empty: versioning was never enabled
  return XmlOk(doc);
}

// Lists through the store, honouring max-keys 0 (which the store need not support).
Result<storage::ListResult> ListThroughStore(Call& call, const storage::ListOptions& options) {
  if (options.max_keys > 0) return call.store.List(call.bucket, options);
  ASSIGN_OR_RETURN(storage::BucketInfo info, call.store.HeadBucket(call.bucket));
  (void)info;
  return storage::ListResult{};
}

void AddContents(pugi::xml_node root, const ObjectInfo& object, bool url, bool owner) {
  pugi::xml_node c = AddElement(root, "Contents");
  AddText(c, "Key", url ? http::UriEncode(object.key, true) : object.key);
  AddText(c, "LastModified", FormatIso8601Millis(object.last_modified_millis));
  AddText(c, "ETag", Quoted(object.etag));
  AddText(c, "Size", std::to_string(object.size));
  if (owner) AddOwner(c);
  AddText(c, "StorageClass", "STANDARD");
}

void AddCommonPrefixes(pugi::xml_node root, const std::vector<std::string>& prefixes, bool url) {
  for (const auto& p : prefixes) {
    AddText(AddElement(root, "CommonPrefixes"), "Prefix", url ? http::UriEncode(p, true) : p);
  }
}

Result<http::Response> ListObjectsV2(Call& call) {
  ASSIGN_OR_RETURN(bool url, UrlEncodingRequested(call));
  ASSIGN_OR_RETURN(int max_keys, MaxItems(call, "max-keys"));
  storage::ListOptions options;
  options.prefix = call.Query("prefix").value_or("");
  options.delimiter = call.Query("delimiter").value_or("");
  options.max_keys = max_keys;
  auto token = call.Query("continuation-token");
  auto start_after = call.Query("start-after");
  if (token) {
    // The token is the last key (or common prefix) returned: it already lies past start-after.
    if (token->empty() || !Base64Decode(*token, &options.start_after)) {
      return Error("InvalidArgument", "The continuation token provided is incorrect");
    }
  } else if (start_after) {
    options.start_after = *start_after;
  }
  ASSIGN_OR_RETURN(storage::ListResult listed, ListThroughStore(call, options));

  auto enc = [&](const std::string& s) { return url ? http::UriEncode(s, true) : s; };
  XmlResponse doc("ListBucketResult");
  pugi::xml_node root = doc.root();
  AddText(root, "Name", call.bucket);
  AddText(root, "Prefix", enc(options.prefix));
  if (!options.delimiter.empty()) AddText(root, "Delimiter", enc(options.delimiter));
  AddText(root, "MaxKeys", std::to_string(max_keys));
  if (url) AddText(root, "EncodingType", "url");
  AddText(root, "KeyCount", std::to_string(listed.objects.size() + listed.common_prefixes.size()));
  AddText(root, "IsTruncated", listed.truncated ? "true" : "false");
  if (token) AddText(root, "ContinuationToken", *token);
  if (listed.truncated) AddText(root, "NextContinuationToken", Base64Encode(listed.last_returned));
  if (start_after) AddText(root, "StartAfter", enc(*start_after));
  bool owner = call.Query("fetch-owner").value_or("") == "true";
  for (const auto& object : listed.objects) AddContents(root, object, url, owner);
  AddCommonPrefixes(root, listed.common_prefixes, url);
  return XmlOk(doc);
}

Result<http::Response> ListObjectsV1(Call& call) {
  ASSIGN_OR_RETURN(bool url, UrlEncodingRequested(call));
  ASSIGN_OR_RETURN(int max_keys, MaxItems(call, "max-keys"));
  storage::ListOptions options;
  options.prefix = call.Query("prefix").value_or("");
  options.delimiter = call.Query("delimiter").value_or("");
  options.start_after = call.Query("marker").value_or("");
  options.max_keys = max_keys;
  ASSIGN_OR_RETURN(storage::ListResult listed, ListThroughStore(call, options));

  auto enc = [&](const std::string& s) { return url ? http::UriEncode(s, true) : s; };
  XmlResponse doc("ListBucketResult");
  pugi::xml_node root = doc.root();
  AddText(root, "Name", call.bucket);
  AddText(root, "Prefix", enc(options.prefix));
  AddText(root, "Marker", enc(options.start_after));
  AddText(root, "MaxKeys", std::to_string(max_keys));
  if (!options.delimiter.empty()) AddText(root, "Delimiter", enc(options.delimiter));
  if (url) AddText(root, "EncodingType", "url");
  AddText(root, "IsTruncated", listed.truncated ? "true" : "false");
  // S3 sends NextMarker only with a delimiter; without one clients continue from the last Key.
  if (listed.truncated && !options.delimiter.empty()) {
    AddText(root, "NextMarker", enc(listed.last_returned));
  }
  for (const auto& object : listed.objects) AddContents(root, object, url, /*owner=*/true);
  AddCommonPrefixes(root, listed.common_prefixes, url);
  return XmlOk(doc);
}

Result<http::Response> DeleteObjects(Call& call) {
  ASSIGN_OR_RETURN(std::string body, ReadXmlBody(call.request));
  ASSIGN_OR_RETURN(DeleteObjectsRequest parsed, ParseDeleteObjects(body));
  ASSIGN_OR_RETURN(storage::BucketInfo info, call.store.HeadBucket(call.bucket));
  (void)info;
  XmlResponse doc("DeleteResult");
  for (const auto& key : parsed.keys) {
    Status s = call.store.DeleteObject(call.bucket, key);
    if (s.ok()) {
      if (!parsed.quiet) AddText(AddElement(doc.root(), "Deleted"), "Key", key);
      continue;
    }
    pugi::xml_node error = AddElement(doc.root(), "Error");
    AddText(error, "Key", key);
    AddText(error, "Code", ToS3Error(s).code);
    AddText(error, "Message", s.message());
  }
  return XmlOk(doc);
}

// ---------------------------------------------------------------------------------------------
// Object operations

Result<http::Response> PutObject(Call& call) {
  RETURN_IF_ERROR(CheckSinglePutSize(call.request));
  ASSIGN_OR_RETURN(storage::PutOptions options, PutOptionsFrom(call.headers(), /*with_md5=*/true));
  ASSIGN_OR_RETURN(auto writer, call.store.OpenForWrite(call.bucket, call.key, options));
  std::vector<std::pair<std::string, std::string>> echo;
  ASSIGN_OR_RETURN(ObjectInfo info, WriteBody(call.request, *writer, &echo));
  http::Response response;
  response.SetHeader("ETag", Quoted(info.etag));
  for (const auto& [name, value] : echo) response.SetHeader(name, value);
  return response;
}

// Applies If-Match / If-Unmodified-Since (412) and If-None-Match / If-Modified-Since (304) in
// RFC 9110's order. Returns 0 when the request should proceed.
Result<int> EvaluateConditions(const http::Headers& headers, const ObjectInfo& info) {
  std::int64_t modified = info.last_modified_millis / 1000;
  if (auto v = headers.Get("if-match")) {
    if (!EtagListMatches(*v, info.etag)) {
      return Error("PreconditionFailed",
                   "At least one of the pre-conditions you specified did not hold");
    }
  } else if (auto v = headers.Get("if-unmodified-since")) {
    auto since = ParseHttpDate(*v);
    if (since && modified > *since) {
      return Error("PreconditionFailed",
                   "At least one of the pre-conditions you specified did not hold");
    }
  }
  if (auto v = headers.Get("if-none-match")) {
    if (EtagListMatches(*v, info.etag)) return 304;
  } else if (auto v = headers.Get("if-modified-since")) {
    auto since = ParseHttpDate(*v);
    if (since && modified <= *since) return 304;
  }
  return 0;
}

Result<http::Response> GetObject(Call& call, bool head) {
  ASSIGN_OR_RETURN(auto reader, call.store.OpenForRead(call.bucket, call.key));
  const ObjectInfo& info = reader->info();
  http::Response response;
  ASSIGN_OR_RETURN(int condition, EvaluateConditions(call.headers(), info));
  if (condition == 304) {
    response.status = 304;
    response.SetHeader("ETag", Quoted(info.etag));
    response.SetHeader("Last-Modified", FormatHttpDate(info.last_modified_millis));
    return response;
  }
  SetObjectHeaders(info, &response);

  ByteRange range{0, info.size == 0 ? 0 : info.size - 1};
  std::uint64_t length = info.size;
  if (auto header = call.headers().Get("range")) {
    Result<std::optional<ByteRange>> parsed_or = ParseRangeHeader(*header, info.size);
    if (!parsed_or.ok()) {
      // A 416 names the object's size so the client can retry with a valid range.
      http::Response refused =
          S3ErrorResponse(parsed_or.status(), call.request.path, call.request.request_id, head);
      refused.SetHeader("Content-Range", "bytes */" + std::to_string(info.size));
      return refused;
    }
    const std::optional<ByteRange>& parsed = *parsed_or;
    if (parsed) {
      range = *parsed;
      length = range.length();
      response.status = 206;
      response.SetHeader("Content-Range", "bytes " + std::to_string(range.first) + "-" +
                                              std::to_string(range.last) + "/" +
                                              std::to_string(info.size));
    }
  }
  // response-* query parameters override stored headers (presigned downloads use them).
  static constexpr std::pair<std::string_view, std::string_view> kOverrides[] = {
      {"response-content-type", "Content-Type"},
      {"response-content-language", "Content-Language"},
      {"response-expires", "Expires"},
      {"response-cache-control", "Cache-Control"},
      {"response-content-disposition", "Content-Disposition"},
      {"response-content-encoding", "Content-Encoding"}};
  for (const auto& [param, header] : kOverrides) {
    if (auto v = call.Query(param)) response.SetHeader(header, *v);
  }

  if (head) {
    response.head_content_length = length;
    return response;
  }
  if (length > 0) {
    // Sent straight from the blob's descriptor when the backend has one: a multi-gigabyte
    // GET never passes through memory.
    if (int fd = reader->DupFd(); fd >= 0) {
      response.file = http::FileBody{std::make_shared<OwnedFd>(fd), range.first, length};
      return response;
    }
    RETURN_IF_ERROR(reader->ReadAt(range.first, static_cast<std::size_t>(length), &response.body));
    if (response.body.size() != length) {
      return Internal("object " + call.key + " is shorter than its recorded size");
    }
  }
  return response;
}

// Hearth keeps no object tags: every object has an empty tag set.
Result<http::Response> GetObjectTagging(Call& call) {
  ASSIGN_OR_RETURN(ObjectInfo info, call.store.Stat(call.bucket, call.key));
  (void)info;
  XmlResponse doc("Tagging");
  AddElement(doc.root(), "TagSet");
  return XmlOk(doc);
}

Result<http::Response> DeleteObject(Call& call) {
  RETURN_IF_ERROR(call.store.DeleteObject(call.bucket, call.key));
  http::Response response;
  response.status = 204;
  return response;
}

struct CopySource {
  std::string bucket;
  std::string key;
};

// "/bucket/key", "bucket/key", percent-encoded, optionally "?versionId=..." (ignored: Hearth
// keeps one version).
Result<CopySource> ParseCopySource(std::string_view header) {
  header = Trim(header);
  header = header.substr(0, header.find('?'));
  std::string decoded;
  if (!http::PercentDecode(header, &decoded)) {
    return Error("InvalidArgument", "Invalid copy source encoding");
  }
  std::string_view rest = decoded;
  if (!rest.empty() && rest.front() == '/') rest.remove_prefix(1);
  auto slash = rest.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == rest.size()) {
    return Error("InvalidArgument",
                 "Copy Source must mention the source bucket and key: sourcebucket/sourcekey");
  }
  return CopySource{std::string(rest.substr(0, slash)), std::string(rest.substr(slash + 1))};
}

Status CheckCopySourceConditions(const http::Headers& headers, const ObjectInfo& source) {
  std::int64_t modified = source.last_modified_millis / 1000;
  auto fail = [] {
    return Error("PreconditionFailed",
                 "At least one of the pre-conditions you specified did not hold");
  };
  if (auto v = headers.Get("x-amz-copy-source-if-match"); v && !EtagListMatches(*v, source.etag)) {
    return fail();
  }
  if (auto v = headers.Get("x-amz-copy-source-if-none-match");
      v && EtagListMatches(*v, source.etag)) {
    return fail();
  }
  if (auto v = headers.Get("x-amz-copy-source-if-unmodified-since")) {
    if (auto since = ParseHttpDate(*v); since && modified > *since) return fail();
  }
  if (auto v = headers.Get("x-amz-copy-source-if-modified-since")) {
    if (auto since = ParseHttpDate(*v); since && modified <= *since) return fail();
  }
  return Status::Ok();
}

Result<http::Response> CopyObject(Call& call) {
  ASSIGN_OR_RETURN(CopySource source, ParseCopySource(*call.headers().Get("x-amz-copy-source")));
  std::string directive = call.headers().GetOr("x-amz-metadata-directive", "COPY");
  if (directive != "COPY" && directive != "REPLACE") {
    return Error("InvalidArgument", "Unknown metadata directive: " + directive);
  }
  bool replace = directive == "REPLACE";
  if (!replace && source.bucket == call.bucket && source.key == call.key) {
    return Error("InvalidRequest",
                 "This copy request is illegal because it is trying to copy an object to itself "
                 "without changing the object's metadata, storage class, website redirect "
                 "location or encryption attributes.");
  }
  ASSIGN_OR_RETURN(ObjectInfo source_info, call.store.Stat(source.bucket, source.key));
  RETURN_IF_ERROR(CheckCopySourceConditions(call.headers(), source_info));
  ASSIGN_OR_RETURN(storage::PutOptions options, PutOptionsFrom(call.headers(), /*with_md5=*/false));
  ASSIGN_OR_RETURN(ObjectInfo info, call.store.CopyObject(source.bucket, source.key, call.bucket,
                                                          call.key, options, replace));
  XmlResponse doc("CopyObjectResult");
  AddText(doc.root(), "LastModified", FormatIso8601Millis(info.last_modified_millis));
  AddText(doc.root(), "ETag", Quoted(info.etag));
  return XmlOk(doc);
}

// ---------------------------------------------------------------------------------------------
// Multipart uploads

Result<http::Response> CreateMultipartUpload(Call& call) {
  ASSIGN_OR_RETURN(storage::PutOptions options, PutOptionsFrom(call.headers(), /*with_md5=*/false));
  ASSIGN_OR_RETURN(std::string upload_id,
                   call.store.CreateMultipartUpload(call.bucket, call.key, options));
  XmlResponse doc("InitiateMultipartUploadResult");
  AddText(doc.root(), "Bucket", call.bucket);
  AddText(doc.root(), "Key", call.key);
  AddText(doc.root(), "UploadId", upload_id);
  http::Response response = XmlOk(doc);
  if (auto algorithm = call.headers().Get("x-amz-checksum-algorithm")) {
    response.SetHeader("x-amz-checksum-algorithm", *algorithm);
  }
  return response;
}

Result<http::Response> UploadPart(Call& call) {
  ASSIGN_OR_RETURN(int part_number, PartNumber(call));
  RETURN_IF_ERROR(CheckSinglePutSize(call.request));
  ASSIGN_OR_RETURN(std::optional<std::string> md5, ContentMd5(call.headers()));
  ASSIGN_OR_RETURN(auto writer,
                   call.store.OpenPartForWrite(call.bucket, call.key, *call.Query("uploadId"),
                                               part_number, md5));
  std::vector<std::pair<std::string, std::string>> echo;
  ASSIGN_OR_RETURN(ObjectInfo info, WriteBody(call.request, *writer, &echo));
  http::Response response;
  response.SetHeader("ETag", Quoted(info.etag));
  for (const auto& [name, value] : echo) response.SetHeader(name, value);
  return response;
}

// UploadPartCopy: a part whose bytes come from an existing object (the CLI copies large
// objects this way).
Result<http::Response> UploadPartCopy(Call& call) {
  ASSIGN_OR_RETURN(int part_number, PartNumber(call));
  ASSIGN_OR_RETURN(CopySource source, ParseCopySource(*call.headers().Get("x-amz-copy-source")));
  ASSIGN_OR_RETURN(auto reader, call.store.OpenForRead(source.bucket, source.key));
  const ObjectInfo& source_info = reader->info();
  RETURN_IF_ERROR(CheckCopySourceConditions(call.headers(), source_info));
  ByteRange range{0, source_info.size == 0 ? 0 : source_info.size - 1};
  std::uint64_t length = source_info.size;
  if (auto header = call.headers().Get("x-amz-copy-source-range")) {
    ASSIGN_OR_RETURN(range, ParseCopySourceRange(*header, source_info.size));
    length = range.length();
  }
  if (length > kMaxSinglePutBytes) {
    return Error("EntityTooLarge", "A copied part may not exceed 5 GiB");
  }
  ASSIGN_OR_RETURN(auto writer,
                   call.store.OpenPartForWrite(call.bucket, call.key, *call.Query("uploadId"),
                                               part_number, std::nullopt));
  std::string piece;
  for (std::uint64_t done = 0; done < length;) {
    std::size_t n =
        static_cast<std::size_t>(std::min<std::uint64_t>(kCopyPieceBytes, length - done));
    RETURN_IF_ERROR(reader->ReadAt(range.first + done, n, &piece));
    if (piece.empty()) return Internal("copy source " + source.key + " ended early");
    RETURN_IF_ERROR(writer->Append(piece));
    done += piece.size();
  }
  ASSIGN_OR_RETURN(ObjectInfo info, writer->Commit());
  XmlResponse doc("CopyPartResult");
  AddText(doc.root(), "LastModified", FormatIso8601Millis(info.last_modified_millis));
  AddText(doc.root(), "ETag", Quoted(info.etag));
  return XmlOk(doc);
}

Result<http::Response> CompleteMultipartUpload(Call& call) {
  ASSIGN_OR_RETURN(std::string body, ReadXmlBody(call.request));
  ASSIGN_OR_RETURN(std::vector<storage::CompletedPart> parts, ParseCompleteMultipartUpload(body));
  ASSIGN_OR_RETURN(ObjectInfo info, call.store.CompleteMultipartUpload(
                                        call.bucket, call.key, *call.Query("uploadId"), parts));
  XmlResponse doc("CompleteMultipartUploadResult");
  std::string host = call.headers().GetOr("host", "localhost");
  AddText(doc.root(), "Location",
          "http://" + host + "/" + call.bucket + "/" + http::UriEncode(call.key, true));
  AddText(doc.root(), "Bucket", call.bucket);
  AddText(doc.root(), "Key", call.key);
  AddText(doc.root(), "ETag", Quoted(info.etag));
  return XmlOk(doc);
}

Result<http::Response> AbortMultipartUpload(Call& call) {
  RETURN_IF_ERROR(call.store.AbortMultipartUpload(call.bucket, call.key, *call.Query("uploadId")));
  http::Response response;
  response.status = 204;
  return response;
}

Result<http::Response> ListParts(Call& call) {
  std::string upload_id = *call.Query("uploadId");
  ASSIGN_OR_RETURN(int max_parts, MaxItems(call, "max-parts"));
  std::uint64_t marker = 0;
  if (auto v = call.Query("part-number-marker")) {
    auto n = ParseUint(*v);
    if (!n) return Error("InvalidArgument", "part-number-marker must be a non-negative integer");
    marker = *n;
  }
  ASSIGN_OR_RETURN(std::vector<storage::PartInfo> parts,
                   call.store.ListParts(call.bucket, call.key, upload_id));
  std::sort(parts.begin(), parts.end(),
            [](const auto& a, const auto& b) { return a.part_number < b.part_number; });

  XmlResponse doc("ListPartsResult");
  pugi::xml_node root = doc.root();
  AddText(root, "Bucket", call.bucket);
  AddText(root, "Key", call.key);
  AddText(root, "UploadId", upload_id);
  AddOwner(root, "Initiator");
  AddOwner(root);
  AddText(root, "StorageClass", "STANDARD");
  AddText(root, "PartNumberMarker", std::to_string(marker));
  int count = 0;
  int last = 0;
  bool truncated = false;
  for (const auto& part : parts) {
    if (static_cast<std::uint64_t>(part.part_number) <= marker) continue;
    if (count == max_parts) {
      truncated = true;
      break;
    }
    pugi::xml_node p = AddElement(root, "Part");
    AddText(p, "PartNumber", std::to_string(part.part_number));
    AddText(p, "LastModified", FormatIso8601Millis(part.last_modified_millis));
    AddText(p, "ETag", Quoted(part.etag));
    AddText(p, "Size", std::to_string(part.size));
    last = part.part_number;
    ++count;
  }
  AddText(root, "NextPartNumberMarker", std::to_string(last));
  AddText(root, "MaxParts", std::to_string(max_parts));
  AddText(root, "IsTruncated", truncated ? "true" : "false");
  return XmlOk(doc);
}

Result<http::Response> ListMultipartUploads(Call& call) {
  ASSIGN_OR_RETURN(bool url, UrlEncodingRequested(call));
  ASSIGN_OR_RETURN(int max_uploads, MaxItems(call, "max-uploads"));
  std::string prefix = call.Query("prefix").value_or("");
  std::string delimiter = call.Query("delimiter").value_or("");
  std::string key_marker = call.Query("key-marker").value_or("");
  std::string upload_id_marker = call.Query("upload-id-marker").value_or("");
  ASSIGN_OR_RETURN(std::vector<storage::UploadInfo> uploads,
                   call.store.ListMultipartUploads(call.bucket));
  // S3 orders by key, then by initiation time.
  std::sort(uploads.begin(), uploads.end(), [](const auto& a, const auto& b) {
    return std::tie(a.key, a.initiated_millis, a.upload_id) <
           std::tie(b.key, b.initiated_millis, b.upload_id);
  });

  auto enc = [&](const std::string& s) { return url ? http::UriEncode(s, true) : s; };
  XmlResponse doc("ListMultipartUploadsResult");
  pugi::xml_node root = doc.root();
  AddText(root, "Bucket", call.bucket);
  AddText(root, "KeyMarker", enc(key_marker));
  AddText(root, "UploadIdMarker", upload_id_marker);
  if (!prefix.empty()) AddText(root, "Prefix", enc(prefix));
  if (!delimiter.empty()) AddText(root, "Delimiter", enc(delimiter));
  if (url) AddText(root, "EncodingType", "url");
  AddText(root, "MaxUploads", std::to_string(max_uploads));

  // Past the marker: keys after key-marker, or, with upload-id-marker, the remaining uploads
  // of key-marker itself after that upload.
  bool past_marker = key_marker.empty();
  std::vector<const storage::UploadInfo*> selected;
  std::vector<std::string> common_prefixes;
  bool truncated = false;
  std::string next_key, next_upload_id;
  for (const auto& upload : uploads) {
    if (!past_marker) {
      if (upload.key < key_marker) continue;
      if (upload.key == key_marker) {
        if (upload_id_marker.empty()) continue;
        if (upload.upload_id == upload_id_marker) past_marker = true;
        continue;
      }
      past_marker = true;
    }
    if (upload.key.compare(0, prefix.size(), prefix) != 0) continue;
    std::optional<std::string> group;
    if (!delimiter.empty()) {
      auto pos = upload.key.find(delimiter, prefix.size());
      if (pos != std::string::npos) group = upload.key.substr(0, pos + delimiter.size());
    }
    if (group && !common_prefixes.empty() && common_prefixes.back() == *group) continue;
    if (static_cast<int>(selected.size() + common_prefixes.size()) == max_uploads) {
      truncated = true;
      break;
    }
    if (group) {
      common_prefixes.push_back(*group);
    } else {
      selected.push_back(&upload);
    }
    next_key = upload.key;
    next_upload_id = upload.upload_id;
  }
  if (truncated) {
    AddText(root, "NextKeyMarker", enc(next_key));
    AddText(root, "NextUploadIdMarker", next_upload_id);
  }
  AddText(root, "IsTruncated", truncated ? "true" : "false");
  for (const auto* upload : selected) {
    pugi::xml_node u = AddElement(root, "Upload");
    AddText(u, "Key", enc(upload->key));
    AddText(u, "UploadId", upload->upload_id);
    AddOwner(u, "Initiator");
    AddOwner(u);
    AddText(u, "StorageClass", "STANDARD");
    AddText(u, "Initiated", FormatIso8601Millis(upload->initiated_millis));
  }
  AddCommonPrefixes(root, common_prefixes, url);
  return XmlOk(doc);
}

// ---------------------------------------------------------------------------------------------
// Routing

Result<http::Response> Dispatch(Call& call) {
  const std::string& method = call.request.method;
  if (call.bucket.empty()) {
    if (method == "GET") return ListBuckets(call);
    return Error("MethodNotAllowed", "The specified method is not allowed against this resource.");
  }
  // Read-only answers for subresources Hearth has no state for: clients (the CLI v2 copying a
  // large object, say) ask before they act, and "none" is the truthful answer.
  if (method == "GET" && call.HasQuery("tagging")) {
    return call.key.empty() ? GetBucketTagging(call) : GetObjectTagging(call);
  }
  if (method == "GET" && call.key.empty() && call.HasQuery("versioning")) {
    return GetBucketVersioning(call);
  }
  if (auto sub = UnsupportedSubresource(call)) return NotImplementedError("?" + *sub);

  if (call.key.empty()) {
    if (method == "GET") {
      if (call.HasQuery("location")) return GetBucketLocation(call);
      if (call.HasQuery("uploads")) return ListMultipartUploads(call);
      if (call.Query("list-type").value_or("") == "2") return ListObjectsV2(call);
      return ListObjectsV1(call);
    }
    if (method == "HEAD") return HeadBucket(call);
    if (method == "PUT") return CreateBucket(call);
    if (method == "DELETE") return DeleteBucket(call);
    if (method == "POST" && call.HasQuery("delete")) return DeleteObjects(call);
  } else {
    bool upload = call.HasQuery("uploadId");
    bool copy = call.headers().Has("x-amz-copy-source");
    if (method == "GET") return upload ? ListParts(call) : GetObject(call, /*head=*/false);
    if (method == "HEAD") return GetObject(call, /*head=*/true);
    if (method == "PUT") {
      if (upload) return copy ? UploadPartCopy(call) : UploadPart(call);
      if (call.HasQuery("partNumber")) {
        return Error("InvalidArgument", "partNumber requires an uploadId");
      }
      return copy ? CopyObject(call) : PutObject(call);
    }
    if (method == "DELETE") return upload ? AbortMultipartUpload(call) : DeleteObject(call);
    if (method == "POST") {
      if (call.HasQuery("uploads")) return CreateMultipartUpload(call);
      if (upload) return CompleteMultipartUpload(call);
    }
  }
  return Error("MethodNotAllowed", "The specified method is not allowed against this resource.");
}

// The error response for a failed request, with the request id every response carries.
http::Response ErrorResponse(const Status& status, const http::Request& request) {
  http::Response response =
      S3ErrorResponse(status, request.path, request.request_id, request.method == "HEAD");
  response.SetHeader("x-amz-request-id", request.request_id);
  return response;
}

}  // namespace

S3Api::S3Api(storage::ObjectStore& store) : store_(store) {}

std::optional<http::Response> S3Api::Precheck(const http::Request& request) const {
  if (request.method != "PUT" || request.headers.Has("x-amz-copy-source")) return std::nullopt;
  Call call{store_, request, {}, {}};
  if (!ParseTarget(call).ok() || call.key.empty()) return std::nullopt;
  Status size = CheckSinglePutSize(request);
  if (size.ok()) return std::nullopt;
  return ErrorResponse(size, request);
}

http::Response S3Api::Handle(http::Request& request) {
  Result<http::Response> result = [&]() -> Result<http::Response> {
    // The one line where exceptions stop (std::bad_alloc, a stray throw in a library).
    try {
      Call call{store_, request, {}, {}};
      RETURN_IF_ERROR(ParseTarget(call));
      return Dispatch(call);
    } catch (const std::exception& e) {
      return Internal(std::string("unexpected exception: ") + e.what(), "InternalError");
    }
  }();
  if (!result.ok()) return ErrorResponse(result.status(), request);
  http::Response response = std::move(result).value();
  response.SetHeader("x-amz-request-id", request.request_id);
  return response;
}

}  // namespace hearth::s3api
