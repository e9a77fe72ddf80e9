// ASCII case folding for names, tokens and header fields.
//
// ASCII only, on purpose: SageMaker names, HTTP tokens and MIME types are ASCII, and
// std::tolower consults the locale on every character.
//
// Thread safety: pure functions.
#pragma once

#include <string>
#include <string_view>

namespace hearth {

inline char AsciiLower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c + ('a' - 'A')) : c;
}

inline std::string AsciiLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = AsciiLower(c);
  return out;
}

inline bool EqualsIgnoringAsciiCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (AsciiLower(a[i]) != AsciiLower(b[i])) return false;
  }
  return true;
}

}  // namespace hearth
