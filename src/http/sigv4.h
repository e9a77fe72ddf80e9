// AWS Signature Version 4: what Hearth reads from a signed request.
//
// Today the server parses the credential (to route by service and to know the caller);
// verifying the signature is a later step behind the same hook (auth_hook in the server).
//
// Thread safety: pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hearth::http {

// From "AWS4-HMAC-SHA256 Credential=AKID/20261128/us-east-1/s3/aws4_request,
//        SignedHeaders=host;x-amz-date, Signature=abcd…"
// or from presigned query parameters (X-Amz-Credential, ...).
struct SigV4Credential {
  std::string access_key_id;
  std::string date;  // yyyymmdd
  std::string region;
  std::string service;  // "s3", "sagemaker", "logs", ...
  std::vector<std::string> signed_headers;
  std::string signature;  // hex
};

// Parses an Authorization header value. nullopt when it is not SigV4 or is malformed.
std::optional<SigV4Credential> ParseSigV4Authorization(std::string_view header);
// Parses "AKID/20261128/us-east-1/s3/aws4_request".
std::optional<SigV4Credential> ParseSigV4CredentialScope(std::string_view scope);

// The signing side of SigV4, as the AWS SDKs compute it; verification recomputes it.
//
// A request reduced to what SigV4 signs. `canonical_uri` and the query are already in their
// canonical (URI-encoded) form; headers are (lower-case name, value) pairs and only those named
// in `signed_headers` (sorted, lower case) take part.
struct CanonicalRequestInput {
  std::string method;
  std::string canonical_uri;
  std::vector<std::pair<std::string, std::string>> query;  // encoded, any order
  std::vector<std::pair<std::string, std::string>> headers;
  std::vector<std::string> signed_headers;
  std::string payload_sha256_hex;  // or "UNSIGNED-PAYLOAD", "STREAMING-…"
};

// The canonical request text (six lines joined by '\n').
std::string CanonicalRequest(const CanonicalRequestInput& input);

// "AWS4-HMAC-SHA256\n<amz_date>\n<date>/<region>/<service>/aws4_request\n<hex sha256 of cr>"
std::string StringToSign(std::string_view amz_date, const SigV4Credential& scope,
                         std::string_view canonical_request);

// Hex HMAC-SHA256 of the string to sign under the key derived from `secret_access_key` and
// the credential's date, region and service.
std::string SigV4Signature(std::string_view secret_access_key, const SigV4Credential& scope,
                           std::string_view string_to_sign);

}  // namespace hearth::http
