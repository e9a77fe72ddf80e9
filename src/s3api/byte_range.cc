#include "s3api/byte_range.h"

#include <algorithm>
#include <charconv>
#include <string>

namespace hearth::s3api {

namespace {

std::optional<std::uint64_t> ParseDecimal(std::string_view s) {
  if (s.empty()) return std::nullopt;
  std::uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

// Splits "bytes=<a>-<b>" into its two (possibly empty) ends; nullopt when it is not that shape.
std::optional<std::pair<std::string_view, std::string_view>> SplitBytesSpec(
    std::string_view header) {
  header = Trim(header);
  constexpr std::string_view kUnit = "bytes=";
  if (header.substr(0, kUnit.size()) != kUnit) return std::nullopt;
  std::string_view spec = Trim(header.substr(kUnit.size()));
  if (spec.find(',') != std::string_view::npos) return std::nullopt;
  auto dash = spec.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  return std::make_pair(Trim(spec.substr(0, dash)), Trim(spec.substr(dash + 1)));
}

Status Unsatisfiable(std::uint64_t size) {
  return InvalidArgument(
      "The requested range is not satisfiable (object size " + std::to_string(size) + ")",
      "InvalidRange");
}

}  // namespace

Result<std::optional<ByteRange>> ParseRangeHeader(std::string_view header, std::uint64_t size) {
  auto ends = SplitBytesSpec(header);
  if (!ends) return std::optional<ByteRange>();
  auto [a, b] = *ends;
  if (a.empty()) {  // suffix range: the last n bytes
    auto n = ParseDecimal(b);
    if (!n) return std::optional<ByteRange>();
    if (*n == 0 || size == 0) return Unsatisfiable(size);
    std::uint64_t take = std::min(*n, size);
    return std::optional<ByteRange>(ByteRange{size - take, size - 1});
  }
  auto first = ParseDecimal(a);
  if (!first) return std::optional<ByteRange>();
  std::uint64_t last = size == 0 ? 0 : size - 1;
  if (!b.empty()) {
    auto parsed_last = ParseDecimal(b);
    if (!parsed_last || *parsed_last < *first) return std::optional<ByteRange>();
    last = std::min(last, *parsed_last);
  }
  if (*first >= size) return Unsatisfiable(size);
  return std::optional<ByteRange>(ByteRange{*first, last});
}

Result<ByteRange> ParseCopySourceRange(std::string_view header, std::uint64_t size) {
  auto ends = SplitBytesSpec(header);
  std::optional<std::uint64_t> first, last;
  if (ends) {
    first = ParseDecimal(ends->first);
    last = ParseDecimal(ends->second);
  }
  if (!first || !last || *first > *last) {
    return InvalidArgument("The x-amz-copy-source-range value must be of the form bytes=first-last",
                           "InvalidArgument");
  }
  if (*last >= size) {
    return InvalidArgument(
        "Range specified is not valid for source object of size: " + std::to_string(size),
        "InvalidArgument");
  }
  return ByteRange{*first, *last};
}

}  // namespace hearth::s3api
