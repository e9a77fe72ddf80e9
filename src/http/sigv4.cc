#include "http/sigv4.h"

#include <algorithm>
#include <cctype>

#include "common/crypto.h"

namespace hearth::http {

namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::vector<std::string> Split(std::string_view s, char sep) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (true) {
    std::size_t pos = s.find(sep, start);
    parts.emplace_back(s.substr(start, pos == std::string_view::npos ? pos : pos - start));
    if (pos == std::string_view::npos) break;
    start = pos + 1;
  }
  return parts;
}

}  // namespace

std::optional<SigV4Credential> ParseSigV4CredentialScope(std::string_view scope) {
  std::vector<std::string> parts = Split(Trim(scope), '/');
  if (parts.size() != 5 || parts[4] != "aws4_request" || parts[0].empty() || parts[1].size() != 8 ||
      parts[3].empty()) {
    return std::nullopt;
  }
  SigV4Credential c;
  c.access_key_id = parts[0];
  c.date = parts[1];
  c.region = parts[2];
  c.service = parts[3];
  return c;
}

std::optional<SigV4Credential> ParseSigV4Authorization(std::string_view header) {
  static constexpr std::string_view kAlgorithm = "AWS4-HMAC-SHA256";
  header = Trim(header);
  if (header.substr(0, kAlgorithm.size()) != kAlgorithm) return std::nullopt;
  header.remove_prefix(kAlgorithm.size());
  std::optional<SigV4Credential> cred;
  std::string signed_headers, signature;
  for (const std::string& item : Split(header, ',')) {
    std::string_view kv = Trim(item);
    std::size_t eq = kv.find('=');
    if (eq == std::string_view::npos) return std::nullopt;
    std::string_view key = kv.substr(0, eq), value = kv.substr(eq + 1);
    if (key == "Credential") {
      cred = ParseSigV4CredentialScope(value);
    } else if (key == "SignedHeaders") {
      signed_headers = std::string(value);
    } else if (key == "Signature") {
      signature = std::string(value);
    }
  }
  if (!cred || signed_headers.empty() || signature.empty()) return std::nullopt;
  cred->signed_headers = Split(signed_headers, ';');
  cred->signature = signature;
  return cred;
}

namespace {
// Header values are trimmed and inner runs of spaces collapse to one.
std::string CanonicalHeaderValue(std::string_view value) {
  std::string out;
  bool space = false;
  for (char c : Trim(value)) {
    if (c == ' ' || c == '\t') {
      space = true;
      continue;
    }
    if (space && !out.empty()) out.push_back(' ');
    space = false;
    out.push_back(c);
  }
  return out;
}
}  // namespace

std::string CanonicalRequest(const CanonicalRequestInput& input) {
  auto query = input.query;
  std::sort(query.begin(), query.end());
  std::string query_text;
  for (const auto& [k, v] : query) {
    if (!query_text.empty()) query_text += '&';
    query_text += k + "=" + v;
  }
  std::string headers_text;
  std::string signed_text;
  for (const std::string& name : input.signed_headers) {
    std::string values;
    for (const auto& [k, v] : input.headers) {
      if (k != name) continue;
      if (!values.empty()) values += ',';
      values += CanonicalHeaderValue(v);
    }
    headers_text += name + ":" + values + "\n";
    if (!signed_text.empty()) signed_text += ';';
    signed_text += name;
  }
  return input.method + "\n" + input.canonical_uri + "\n" + query_text + "\n" + headers_text +
         "\n" + signed_text + "\n" + input.payload_sha256_hex;
}

std::string StringToSign(std::string_view amz_date, const SigV4Credential& scope,
                         std::string_view canonical_request) {
  return "AWS4-HMAC-SHA256\n" + std::string(amz_date) + "\n" + scope.date + "/" + scope.region +
         "/" + scope.service + "/aws4_request\n" + Sha256Hex(canonical_request);
}

std::string SigV4Signature(std::string_view secret_access_key, const SigV4Credential& scope,
                           std::string_view string_to_sign) {
  std::string key = HmacSha256("AWS4" + std::string(secret_access_key), scope.date);
  key = HmacSha256(key, scope.region);
  key = HmacSha256(key, scope.service);
  key = HmacSha256(key, "aws4_request");
  return HexEncode(HmacSha256(key, string_to_sign));
}

}  // namespace hearth::http
