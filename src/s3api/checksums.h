// The additional checksums S3 clients send with uploads (x-amz-checksum-<algorithm>, in a
// header or an aws-chunked trailer): computed incrementally over a streamed body so that the
// handler can verify what the client claims and echo the value back, as S3 does.
//
// Wire form of every value: base64 of the big-endian digest.
//
// Thread safety: a Checksummer is used by one request; the free functions are pure.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace hearth::s3api {

enum class ChecksumAlgorithm { kCrc32, kCrc32c, kCrc64Nvme, kSha1, kSha256 };

// "x-amz-checksum-crc32" (any case) -> kCrc32; nullopt for anything else.
std::optional<ChecksumAlgorithm> ChecksumAlgorithmFromHeader(std::string_view header_name);
// "CRC32", "crc32c", ... (x-amz-sdk-checksum-algorithm) -> algorithm.
std::optional<ChecksumAlgorithm> ChecksumAlgorithmFromName(std::string_view name);
// kCrc32 -> "x-amz-checksum-crc32".
std::string ChecksumHeaderName(ChecksumAlgorithm algorithm);

// Raw CRCs, exposed for tests. `crc` is the running value (start with 0).
std::uint32_t Crc32c(std::uint32_t crc, std::string_view data);
std::uint64_t Crc64Nvme(std::uint64_t crc, std::string_view data);

class Checksummer {
 public:
  explicit Checksummer(ChecksumAlgorithm algorithm);
  ~Checksummer();
  Checksummer(Checksummer&&) noexcept;
  Checksummer& operator=(Checksummer&&) noexcept;

  ChecksumAlgorithm algorithm() const { return algorithm_; }
  void Update(std::string_view data);
  // Base64 of the digest. The checksummer must not be updated afterwards.
  std::string FinishBase64();

 private:
  struct Digest;  // OpenSSL state for SHA-1/SHA-256

  ChecksumAlgorithm algorithm_;
  std::uint64_t crc_ = 0;
  std::unique_ptr<Digest> digest_;
};

}  // namespace hearth::s3api
