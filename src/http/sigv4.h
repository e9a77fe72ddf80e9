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

}  // namespace hearth::http
