#include "s3api/checksums.h"

#include <algorithm>
#include <array>
#include <cstring>

#include <openssl/evp.h>
#include <zlib.h>

#include "common/crypto.h"

namespace hearth::s3api {

namespace {

// Reflected CRC tables for slicing-by-8: bodies run to gigabytes, and eight table lookups per
// eight bytes are several times faster than one lookup per byte.
template <typename T>
struct CrcTables {
  std::array<std::array<T, 256>, 8> t{};
  explicit constexpr CrcTables(T reflected_poly) {
    for (unsigned i = 0; i < 256; ++i) {
      T c = static_cast<T>(i);
      for (int k = 0; k < 8; ++k)
        c = (c & 1) ? static_cast<T>((c >> 1) ^ reflected_poly) : (c >> 1);
      t[0][i] = c;
    }
    for (unsigned i = 0; i < 256; ++i) {
      for (int k = 1; k < 8; ++k)
        t[k][i] = static_cast<T>((t[k - 1][i] >> 8) ^ t[0][t[k - 1][i] & 0xFF]);
    }
  }
};

std::uint64_t LoadLe64(const unsigned char* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// crc is the conventional running value (0 to start); pre/post inversion happens here.
template <typename T>
T ReflectedCrc(const CrcTables<T>& tab, T crc, std::string_view data) {
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  std::size_t n = data.size();
  crc = static_cast<T>(~crc);
  while (n >= 8) {
    std::uint64_t word = LoadLe64(p);
    if constexpr (sizeof(T) == 8) {
      std::uint64_t x = crc ^ word;
      crc = tab.t[7][x & 0xFF] ^ tab.t[6][(x >> 8) & 0xFF] ^ tab.t[5][(x >> 16) & 0xFF] ^
            tab.t[4][(x >> 24) & 0xFF] ^ tab.t[3][(x >> 32) & 0xFF] ^ tab.t[2][(x >> 40) & 0xFF] ^
            tab.t[1][(x >> 48) & 0xFF] ^ tab.t[0][x >> 56];
    } else {
      std::uint32_t lo = crc ^ static_cast<std::uint32_t>(word);
      std::uint32_t hi = static_cast<std::uint32_t>(word >> 32);
      crc = tab.t[7][lo & 0xFF] ^ tab.t[6][(lo >> 8) & 0xFF] ^ tab.t[5][(lo >> 16) & 0xFF] ^
            tab.t[4][lo >> 24] ^ tab.t[3][hi & 0xFF] ^ tab.t[2][(hi >> 8) & 0xFF] ^
            tab.t[1][(hi >> 16) & 0xFF] ^ tab.t[0][hi >> 24];
    }
    p += 8;
    n -= 8;
  }
  while (n-- > 0) crc = static_cast<T>((crc >> 8) ^ tab.t[0][(crc ^ *p++) & 0xFF]);
  return static_cast<T>(~crc);
}

const CrcTables<std::uint32_t>& Crc32cTables() {
  static const CrcTables<std::uint32_t> tables(0x82F63B78u);  // Castagnoli, reflected
  return tables;
}

const CrcTables<std::uint64_t>& Crc64NvmeTables() {
  static const CrcTables<std::uint64_t> tables(0x9A6C9329AC4BC9B5ull);  // NVMe, reflected
  return tables;
}

std::string BigEndian(std::uint64_t v, int bytes) {
  std::string out(static_cast<std::size_t>(bytes), '\0');
  for (int i = bytes - 1; i >= 0; --i) {
    out[static_cast<std::size_t>(i)] = static_cast<char>(v & 0xFF);
    v >>= 8;
  }
  return out;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

}  // namespace

std::optional<ChecksumAlgorithm> ChecksumAlgorithmFromName(std::string_view name) {
  std::string n = Lower(name);
  if (n == "crc32") return ChecksumAlgorithm::kCrc32;
  if (n == "crc32c") return ChecksumAlgorithm::kCrc32c;
  if (n == "crc64nvme") return ChecksumAlgorithm::kCrc64Nvme;
  if (n == "sha1") return ChecksumAlgorithm::kSha1;
  if (n == "sha256") return ChecksumAlgorithm::kSha256;
  return std::nullopt;
}

std::optional<ChecksumAlgorithm> ChecksumAlgorithmFromHeader(std::string_view header_name) {
  constexpr std::string_view kPrefix = "x-amz-checksum-";
  std::string h = Lower(header_name);
  if (h.rfind(kPrefix, 0) != 0) return std::nullopt;
  return ChecksumAlgorithmFromName(std::string_view(h).substr(kPrefix.size()));
}

std::string ChecksumHeaderName(ChecksumAlgorithm algorithm) {
  switch (algorithm) {
    case ChecksumAlgorithm::kCrc32:
      return "x-amz-checksum-crc32";
    case ChecksumAlgorithm::kCrc32c:
      return "x-amz-checksum-crc32c";
    case ChecksumAlgorithm::kCrc64Nvme:
      return "x-amz-checksum-crc64nvme";
    case ChecksumAlgorithm::kSha1:
      return "x-amz-checksum-sha1";
    case ChecksumAlgorithm::kSha256:
      return "x-amz-checksum-sha256";
  }
  return "";
}

std::uint32_t Crc32c(std::uint32_t crc, std::string_view data) {
  return ReflectedCrc(Crc32cTables(), crc, data);
}

std::uint64_t Crc64Nvme(std::uint64_t crc, std::string_view data) {
  return ReflectedCrc(Crc64NvmeTables(), crc, data);
}

struct Checksummer::Digest {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  ~Digest() { EVP_MD_CTX_free(ctx); }
};

Checksummer::Checksummer(ChecksumAlgorithm algorithm) : algorithm_(algorithm) {
  if (algorithm == ChecksumAlgorithm::kSha1 || algorithm == ChecksumAlgorithm::kSha256) {
    digest_ = std::make_unique<Digest>();
    EVP_DigestInit_ex(digest_->ctx,
                      algorithm == ChecksumAlgorithm::kSha1 ? EVP_sha1() : EVP_sha256(), nullptr);
  }
}

Checksummer::~Checksummer() = default;
Checksummer::Checksummer(Checksummer&&) noexcept = default;
Checksummer& Checksummer::operator=(Checksummer&&) noexcept = default;

void Checksummer::Update(std::string_view data) {
  switch (algorithm_) {
    case ChecksumAlgorithm::kCrc32: {
      // zlib takes a uInt length; feed huge pieces in slices.
      while (!data.empty()) {
        std::size_t n = std::min<std::size_t>(data.size(), 1u << 30);
        crc_ = ::crc32(static_cast<uLong>(crc_), reinterpret_cast<const Bytef*>(data.data()),
                       static_cast<uInt>(n));
        data.remove_prefix(n);
      }
      break;
    }
    case ChecksumAlgorithm::kCrc32c:
      crc_ = Crc32c(static_cast<std::uint32_t>(crc_), data);
      break;
    case ChecksumAlgorithm::kCrc64Nvme:
      crc_ = Crc64Nvme(crc_, data);
      break;
    case ChecksumAlgorithm::kSha1:
    case ChecksumAlgorithm::kSha256:
      EVP_DigestUpdate(digest_->ctx, data.data(), data.size());
      break;
  }
}

std::string Checksummer::FinishBase64() {
  switch (algorithm_) {
    case ChecksumAlgorithm::kCrc32:
    case ChecksumAlgorithm::kCrc32c:
      return Base64Encode(BigEndian(crc_, 4));
    case ChecksumAlgorithm::kCrc64Nvme:
      return Base64Encode(BigEndian(crc_, 8));
    case ChecksumAlgorithm::kSha1:
    case ChecksumAlgorithm::kSha256: {
      unsigned char buf[EVP_MAX_MD_SIZE];
      unsigned int len = 0;
      EVP_DigestFinal_ex(digest_->ctx, buf, &len);
      return Base64Encode(std::string_view(reinterpret_cast<const char*>(buf), len));
    }
  }
  return "";
}

}  // namespace hearth::s3api
