// Hashes and encodings over OpenSSL: MD5 ETags, SHA-256 and HMAC for SigV4, Base64.
//
// Thread safety: all functions and distinct Md5Hasher objects may be used concurrently.
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace hearth {

std::string HexEncode(std::string_view bytes);
std::string Md5Hex(std::string_view data);
std::string Sha256Hex(std::string_view data);
std::string HmacSha256(std::string_view key, std::string_view data);  // raw bytes
std::string Base64Encode(std::string_view bytes);
// Returns false on malformed input.
bool Base64Decode(std::string_view text, std::string* out);

// Incremental MD5 for streamed bodies.
class Md5Hasher {
 public:
  Md5Hasher();
  ~Md5Hasher();
  Md5Hasher(const Md5Hasher&) = delete;
  Md5Hasher& operator=(const Md5Hasher&) = delete;

  void Update(std::string_view data);
  // Raw 16 bytes. The hasher must not be used afterwards.
  std::string FinishRaw();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hearth
