// Protocol-buffer wire format, just enough for aialgs.data.Record (proto/record.proto):
// varints, tags, length-delimited fields and packed repeated scalars. Reading and writing
// Records this way skips the generated classes' map and message allocations, which dominate
// the cost of one small row per record; the generated classes stay the reference in tests.
//
// Thread safety: value types over borrowed bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace hearth::data::wire {

enum WireType : std::uint32_t { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

// Reads fields from [p, end). Every method returns false on malformed or truncated input and
// leaves the reader unusable.
class Reader {
 public:
  Reader(const char* p, const char* end)
      : p_(reinterpret_cast<const std::uint8_t*>(p)),
        end_(reinterpret_cast<const std::uint8_t*>(end)) {}
  explicit Reader(std::string_view bytes) : Reader(bytes.data(), bytes.data() + bytes.size()) {}

  bool done() const { return p_ == end_; }

  bool ReadVarint(std::uint64_t* value) {
    std::uint64_t result = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p_ == end_) return false;
      std::uint8_t byte = *p_++;
      result |= static_cast<std::uint64_t>(byte & 0x7F) << shift;
      if ((byte & 0x80) == 0) {
        *value = result;
        return true;
      }
    }
    return false;
  }

  bool ReadTag(std::uint32_t* field, std::uint32_t* wire_type) {
    std::uint64_t tag;
    if (!ReadVarint(&tag) || (tag >> 3) == 0 || tag > 0xFFFFFFFFull) return false;
    *field = static_cast<std::uint32_t>(tag >> 3);
    *wire_type = static_cast<std::uint32_t>(tag & 7);
    return true;
  }

  bool ReadBytes(std::string_view* bytes) {
    std::uint64_t len;
    if (!ReadVarint(&len) || len > static_cast<std::uint64_t>(end_ - p_)) return false;
    *bytes = std::string_view(reinterpret_cast<const char*>(p_), len);
    p_ += len;
    return true;
  }

  template <typename T>
  bool ReadFixed(T* value) {
    if (static_cast<std::size_t>(end_ - p_) < sizeof(T)) return false;
    std::memcpy(value, p_, sizeof(T));  // the wire is little-endian, as is every target
    p_ += sizeof(T);
    return true;
  }

  bool Skip(std::uint32_t wire_type) {
    std::uint64_t ignored;
    std::string_view bytes;
    switch (wire_type) {
      case kVarint: return ReadVarint(&ignored);
      case kFixed64: return ReadFixed(&ignored);
      case kLengthDelimited: return ReadBytes(&bytes);
      case kFixed32: {
        std::uint32_t word;
        return ReadFixed(&word);
      }
      default: return false;  // groups are not part of this schema
    }
  }

 private:
  const std::uint8_t* p_;
  const std::uint8_t* end_;
};

inline std::size_t VarintSize(std::uint64_t value) {
  std::size_t n = 1;
  while (value >= 0x80) {
    value >>= 7;
    ++n;
  }
  return n;
}

inline void PutVarint(std::string* out, std::uint64_t value) {
  char buf[10];
  std::size_t n = 0;
  while (value >= 0x80) {
    buf[n++] = static_cast<char>((value & 0x7F) | 0x80);
    value >>= 7;
  }
  buf[n++] = static_cast<char>(value);
  out->append(buf, n);
}

inline void PutTag(std::string* out, std::uint32_t field, WireType type) {
  PutVarint(out, (static_cast<std::uint64_t>(field) << 3) | type);
}

inline std::size_t TagSize(std::uint32_t field) { return VarintSize(std::uint64_t{field} << 3); }

// Size of a length-delimited field whose payload is `payload` bytes.
inline std::size_t DelimitedSize(std::uint32_t field, std::size_t payload) {
  return TagSize(field) + VarintSize(payload) + payload;
}

}  // namespace hearth::data::wire
