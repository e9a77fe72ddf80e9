// Number parsing for the text formats (CSV, libsvm), correctly rounded and locale-free.
//
// libstdc++ 12's std::from_chars<float> costs ~30-50 ns a value, which caps CSV near
// 200 MB/s. The fast path here takes the decimal forms real files hold
// ([+-]digits[.digits][e[+-]digits], at most 19 digits) and computes mantissa * 10^exponent in
// double, which lands within 4 ulp of the exact value (the mantissa, the power of ten and the
// product each round once). Rounding that double to float is then exact unless it sits within
// those ulp of a float rounding midpoint (its low 29 mantissa bits near 0x10000000): only then,
// and for every other form (nan, inf, |exponent| > 22, denormals, long digit strings), does the
// value go through std::from_chars. Out-of-range values become ±inf or zero, not errors.
//
// Thread safety: pure functions.
#pragma once

#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <system_error>

namespace hearth::data {

// 1e-22 .. 1e22, each the double nearest to it (exact from 1e0 up).
inline constexpr double kPowersOfTen[] = {
    1e-22, 1e-21, 1e-20, 1e-19, 1e-18, 1e-17, 1e-16, 1e-15, 1e-14, 1e-13, 1e-12,
    1e-11, 1e-10, 1e-9,  1e-8,  1e-7,  1e-6,  1e-5,  1e-4,  1e-3,  1e-2,  1e-1,
    1e0,   1e1,   1e2,   1e3,   1e4,   1e5,   1e6,   1e7,   1e8,   1e9,   1e10,
    1e11,  1e12,  1e13,  1e14,  1e15,  1e16,  1e17,  1e18,  1e19,  1e20,  1e21, 1e22};

// The exact parser, for what the fast path declines.
inline const char* ParseFloatSlow(const char* p, const char* end, float* value) {
  auto [after, ec] = std::from_chars(p, end, *value);
  if (ec == std::errc()) return after;
  if (ec != std::errc::result_out_of_range) return nullptr;
  // from_chars leaves *value untouched here; strtof saturates the way we want. Rare, so the
  // copy (strtof needs a terminated string) does not matter.
  std::string text(p, after);
  *value = std::strtof(text.c_str(), nullptr);
  return after;
}

inline bool IsDigit(char c) { return static_cast<unsigned char>(c - '0') < 10; }

// Appends the digits at p to `mantissa` (which may overflow: callers count digits) and returns
// how many there were. Eight bytes at a time where eight are readable: a per-character loop
// mispredicts its exit on every number.
inline std::ptrdiff_t AccumulateDigits(const char*& p, const char* end, std::uint64_t* mantissa) {
  static constexpr std::uint64_t kPow10[] = {1,      10,      100,      1000,     10000,
                                             100000, 1000000, 10000000, 100000000};
  const char* begin = p;
  std::uint64_t m = *mantissa;
  while (end - p >= 8) {
    std::uint64_t chunk;
    std::memcpy(&chunk, p, 8);
    std::uint64_t x = chunk ^ 0x3030303030303030ull;  // a digit byte becomes 0..9
    // High bit set in every byte that is not a digit (a carry only corrupts later bytes).
    std::uint64_t non_digit = ((x + 0x7676767676767676ull) | x) & 0x8080808080808080ull;
    int n = non_digit == 0 ? 8 : __builtin_ctzll(non_digit) >> 3;
    if (n == 0) break;
    // Keep the first n digits, as the high bytes, behind zeros; then combine eight digits
    // with three multiplications.
    std::uint64_t v = x << (8 * (8 - n));
    v = (v * 10) + (v >> 8);
    v = (((v & 0x000000FF000000FFull) * 0x000F424000000064ull) +
         (((v >> 16) & 0x000000FF000000FFull) * 0x0000271000000001ull)) >> 32;
    m = m * kPow10[n] + static_cast<std::uint32_t>(v);
    p += n;
    if (n < 8) {
      *mantissa = m;
      return p - begin;
    }
  }
  for (; p < end && IsDigit(*p); ++p) m = m * 10 + static_cast<unsigned>(*p - '0');
  *mantissa = m;
  return p - begin;
}

// Parses a float at [p, end). Returns one past its last character, or nullptr when no number
// starts at p. A leading '+' is allowed.
inline const char* ParseFloat(const char* p, const char* end, float* value) {
  if (p < end && *p == '+') ++p;
  const char* start = p;
  bool negative = p < end && *p == '-';
  if (negative) ++p;

  std::uint64_t mantissa = 0;
  std::ptrdiff_t digits = AccumulateDigits(p, end, &mantissa);
  int exponent = 0;
  if (p < end && *p == '.') {
    ++p;
    std::ptrdiff_t fraction = AccumulateDigits(p, end, &mantissa);
    exponent = -static_cast<int>(fraction);
    digits += fraction;
  }
  // No digits: nan, inf or not a number. Over 19 digits: the mantissa overflowed.
  if (digits == 0 || digits > 19) return ParseFloatSlow(start, end, value);
  if (p < end && (*p | 0x20) == 'e') {
    const char* q = p + 1;
    bool exponent_negative = false;
    if (q < end && (*q == '+' || *q == '-')) exponent_negative = *q++ == '-';
    if (q < end && IsDigit(*q)) {
      int written = 0;
      for (; q < end && IsDigit(*q); ++q) {
        if (written < 100000) written = written * 10 + (*q - '0');
      }
      exponent += exponent_negative ? -written : written;
      p = q;
    }  // else "1e" is the number 1 followed by 'e', as from_chars reads it
  }
  if (mantissa == 0) {
    *value = negative ? -0.0f : 0.0f;
    return p;
  }
  if (exponent < -22 || exponent > 22) return ParseFloatSlow(start, end, value);
  double d = static_cast<std::int64_t>(mantissa) >= 0
                 ? static_cast<double>(static_cast<std::int64_t>(mantissa))
                 : static_cast<double>(mantissa);
  d *= kPowersOfTen[exponent + 22];
  // Outside float's normal range the float grid is not 2^29 doubles wide: go exact.
  if (!(d >= 1.1754943508222875e-38 && d <= 3.4028234663852886e38)) {
    return ParseFloatSlow(start, end, value);
  }
  std::uint64_t bits;
  std::memcpy(&bits, &d, sizeof(bits));
  constexpr std::uint64_t kMidpoint = std::uint64_t{1} << 28;
  std::uint64_t low = bits & ((std::uint64_t{1} << 29) - 1);
  if (low + 8 >= kMidpoint && low <= kMidpoint + 8) return ParseFloatSlow(start, end, value);
  float f = static_cast<float>(d);
  *value = negative ? -f : f;
  return p;
}

}  // namespace hearth::data
