#include "http/sigv4.h"

#include <cctype>

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

}  // namespace hearth::http
