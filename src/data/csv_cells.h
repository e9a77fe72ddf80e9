// The vector fast path of the CSV reader: splitting a row at its commas, and reading a cell that
// holds a plain decimal ([-]digits[.digits], at most 16 characters after the sign) without a
// character loop.
//
// Parsing cell after cell makes each cell's start wait for the previous number to be read to its
// last digit, and a per-character loop mispredicts its exit on every number. Here the row's
// commas are found first (16 or 32 bytes a step), so every cell's extent is known before it is
// read; then each cell is one 16-byte load ending at its last byte, classified and turned into
// digits with a few vector instructions. Cells are independent, so the core overlaps several.
//
// Exactness: a cell of at most 7 digits is M / 10^k with M < 2^24 and k <= 7, both exact in
// float, so one float division rounds it correctly. Up to 16 digits M is exact in double and is
// scaled as text_number.h's fast path does, with its rounding-midpoint check. Every other cell
// (blanks, '+', exponents, nan/inf, longer numbers) goes through ParseFloat unchanged.
//
// The vector path needs SSE4.1 (the library is built with -march=native); without it only
// ParseCellText is defined and the reader parses cell after cell.
//
// Thread safety: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>

#if defined(__SSE4_1__)
#include <immintrin.h>
#endif

#include "data/text_number.h"

namespace hearth::data {

// Extra entries FindCellEnds may write past `max_cells` before it notices the row is too wide.
inline constexpr std::size_t kCellEndsSlack = 64;

// One cell, surrounding blanks included; an empty cell is NaN. Returns where the cell ends (at
// ',' or `end`, or at the junk after a number), nullptr when it is not a number.
inline const char* ParseCellText(const char* p, const char* end, float* v) {
  while (p < end && (*p == ' ' || *p == '\t')) ++p;
  if (p == end || *p == ',') {
    *v = std::numeric_limits<float>::quiet_NaN();
    return p;
  }
  p = ParseFloat(p, end, v);
  if (p == nullptr) return nullptr;
  while (p < end && (*p == ' ' || *p == '\t')) ++p;
  return p;
}

// Whether [cell, end) holds exactly one number (or nothing): the general path. The number is read
// up to `line_end` (which lets ParseFloat take eight digits at a time near the cell's end) and
// must stop at `end`; no number runs into the ',' there.
[[gnu::noinline]] inline bool ParseWholeCell(const char* cell, const char* end,
                                             const char* line_end, float* v) {
  return ParseCellText(cell, line_end, v) == end;
}

#if defined(__SSE4_1__)

namespace csv_internal {

struct Tables {
  // drop_dot[d]: a shuffle that removes byte d, moving bytes 0..d-1 up one place (byte 0 gets
  // zero); drop_dot[16] keeps every byte.
  alignas(16) std::uint8_t drop_dot[17][16];
  // tail + n: 16 bytes whose last n are 0xFF.
  std::uint8_t tail[32];
  // divisor[negative][k] = ±10^k, exact in float.
  float divisor[2][8];

  constexpr Tables() : drop_dot{}, tail{}, divisor{} {
    for (int d = 0; d <= 16; ++d) {
      for (int j = 0; j < 16; ++j) {
        drop_dot[d][j] = static_cast<std::uint8_t>(d == 16 || j > d ? j : j == 0 ? 0x80 : j - 1);
      }
    }
    for (int j = 0; j < 32; ++j) tail[j] = j < 16 ? 0 : 0xFF;
    float p = 1;
    for (int k = 0; k < 8; ++k, p *= 10) {
      divisor[0][k] = p;
      divisor[1][k] = -p;
    }
  }
};
inline constexpr Tables kTables{};

// Cells of 8-16 digits: M exact in double, then text_number.h's rounding check.
[[gnu::noinline]] inline bool ParseLongDecimal(__m128i digits, unsigned frac, bool negative,
                                               float* v) {
  std::uint64_t hi = static_cast<std::uint32_t>(_mm_cvtsi128_si32(digits));
  std::uint64_t lo = static_cast<std::uint32_t>(_mm_extract_epi32(digits, 1));
  double d = static_cast<double>(hi * 100000000u + lo) * kPowersOfTen[22 - frac];
  std::uint64_t bits;
  std::memcpy(&bits, &d, sizeof(bits));
  constexpr std::uint64_t kMidpoint = std::uint64_t{1} << 28;
  std::uint64_t low = bits & ((std::uint64_t{1} << 29) - 1);
  if (low + 8 >= kMidpoint && low <= kMidpoint + 8) return false;
  float f = static_cast<float>(d);
  *v = negative ? -f : f;
  return true;
}

}  // namespace csv_internal

// Reads the cell [cell, end) of a row ending at `line_end` as ParseCellText does (blanks around
// the number allowed, an empty cell is NaN) and returns whether it holds exactly one number.
// Bytes [end - 16, end) are read when end - 16 >= `floor`; below that the cell is copied first.
// Counts in *declined a cell that is not a plain decimal (read by the general path).
inline bool ParseCell(const char* cell, const char* end, const char* floor, const char* line_end,
                      float* v, std::size_t* declined) {
  using csv_internal::kTables;
  if (cell == end) {
    *v = std::numeric_limits<float>::quiet_NaN();
    return true;
  }
  const bool negative = *cell == '-';
  const unsigned len = static_cast<unsigned>(end - cell) - negative;  // without the sign
  if (len - 1 > 15) {
    ++*declined;
    return ParseWholeCell(cell, end, line_end, v);
  }
  __m128i bytes;
  if (end - floor >= 16) {
    bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(end - 16));
  } else {
    alignas(16) char copy[16] = {};
    std::memcpy(copy + 16 - len, end - len, len);
    bytes = _mm_load_si128(reinterpret_cast<const __m128i*>(copy));
  }
  __m128i values = _mm_sub_epi8(bytes, _mm_set1_epi8('0'));
  __m128i is_digit = _mm_cmpeq_epi8(_mm_min_epu8(values, _mm_set1_epi8(9)), values);
  // The number's bytes are the last `len`: bit i of a mask is byte i.
  const unsigned span = (0xFFFF0000u >> len) & 0xFFFFu;
  unsigned digits = static_cast<unsigned>(_mm_movemask_epi8(is_digit)) & span;
  unsigned dots =
      static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(bytes, _mm_set1_epi8('.')))) & span;
  // Digits and at most one '.', with at least one digit.
  if ((digits | dots) != span || (dots & (dots - 1)) != 0 || digits == 0) {
    ++*declined;
    return ParseWholeCell(cell, end, line_end, v);
  }
  values = _mm_and_si128(
      _mm_and_si128(values, is_digit),
      _mm_loadu_si128(reinterpret_cast<const __m128i*>(kTables.tail + len)));
  // Digits right-aligned without the '.', then eight-digit halves: [high, low, ...].
  values = _mm_shuffle_epi8(values, _mm_load_si128(reinterpret_cast<const __m128i*>(
                                        kTables.drop_dot[__builtin_ctz(dots | 0x10000u)])));
  values = _mm_maddubs_epi16(values, _mm_setr_epi8(10, 1, 10, 1, 10, 1, 10, 1, 10, 1, 10, 1, 10,
                                                   1, 10, 1));
  values = _mm_madd_epi16(values, _mm_setr_epi16(100, 1, 100, 1, 100, 1, 100, 1));
  values = _mm_packus_epi32(values, values);
  values = _mm_madd_epi16(values, _mm_setr_epi16(10000, 1, 10000, 1, 10000, 1, 10000, 1));
  const unsigned frac = 15 - __builtin_ctz(dots | 0x8000u);  // digits after the '.'
  if (__builtin_popcount(digits) > 7) {
    if (csv_internal::ParseLongDecimal(values, frac, negative, v)) return true;
    return ParseWholeCell(cell, end, line_end, v);
  }
  // At most 7 digits: the number is the low half.
  __m128 quotient = _mm_div_ss(_mm_cvtepi32_ps(_mm_srli_si128(values, 4)),
                               _mm_load_ss(&kTables.divisor[negative][frac]));
  _mm_store_ss(v, quotient);
  return true;
}

// Writes the offset from `line` of each cell's end (its ',' or `end`) into ends[0..n) and returns
// n, the number of cells; stops once n exceeds `max_cells` (returning more than max_cells).
// `ends` must hold max_cells + kCellEndsSlack entries. Bytes up to `readable_end` may be read.
inline std::size_t FindCellEnds(const char* line, const char* end, const char* readable_end,
                                std::uint32_t* ends, std::size_t max_cells) {
  std::size_t n = 0;
  const char* p = line;
  // Appends the cells ending in `mask` (bit i: a ',' at p + i). Four writes without looking,
  // which covers most blocks without a data-dependent branch.
  auto emit = [&](std::uint32_t mask) {
    const auto at = static_cast<std::uint32_t>(p - line);
    std::uint32_t* w = ends + n;
    n += static_cast<std::size_t>(__builtin_popcount(mask));
    for (int k = 0; k < 4; ++k) {
      w[k] = at + static_cast<std::uint32_t>(__builtin_ctzll(mask | (std::uint64_t{1} << 32)));
      mask &= mask - 1;
    }
    for (w += 4; mask != 0; mask &= mask - 1) {
      *w++ = at + static_cast<std::uint32_t>(__builtin_ctz(mask));
    }
  };
#if defined(__AVX2__)
  const __m256i comma = _mm256_set1_epi8(',');
  for (; end - p >= 32 && n <= max_cells; p += 32) {
    __m256i block = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    emit(static_cast<std::uint32_t>(_mm256_movemask_epi8(_mm256_cmpeq_epi8(block, comma))));
  }
#endif
  const __m128i comma16 = _mm_set1_epi8(',');
  for (; end - p >= 16 && n <= max_cells; p += 16) {
    __m128i block = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    emit(static_cast<std::uint32_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(block, comma16))));
  }
  if (n <= max_cells && p < end) {
    if (readable_end - p >= 16) {
      __m128i block = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
      auto mask = static_cast<std::uint32_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(block, comma16)));
      emit(mask & ((1u << (end - p)) - 1));
    } else {
      for (; p < end; ++p) {
        if (*p == ',') ends[n++] = static_cast<std::uint32_t>(p - line);
      }
    }
  }
  if (n <= max_cells) ends[n++] = static_cast<std::uint32_t>(end - line);
  return n;
}

#endif  // __SSE4_1__; without it the reader parses cell after cell

}  // namespace hearth::data
