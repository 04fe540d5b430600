#pragma once

// UTF-8 decoding as the Unicode standard defines well-formed sequences
// (chapter 3, table 3-7): no overlong forms, no surrogates, nothing above
// U+10FFFF. The JSON writer, the text cutter and Python's repr share it, so
// that every part of vigil agrees on what is a character and what is not.

#include <cstddef>
#include <cstdint>

namespace vigil {

/// Length (1 to 4) of the well-formed UTF-8 sequence at `p` (`n` > 0 bytes
/// available), or 0 when none starts there.
inline size_t utf8_sequence_length(const unsigned char* p, size_t n) {
  auto b0 = p[0];
  if (b0 < 0x80)
    return 1;
  // The second byte's range depends on the first; the others are plain
  // continuation bytes (80..BF).
  size_t len = 0;
  unsigned char lo = 0x80;
  unsigned char hi = 0xBF;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3;
    if (b0 == 0xE0)
      lo = 0xA0; // E0 80..9F would be overlong
    else if (b0 == 0xED)
      hi = 0x9F; // ED A0..BF would be a surrogate
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4;
    if (b0 == 0xF0)
      lo = 0x90; // F0 80..8F would be overlong
    else if (b0 == 0xF4)
      hi = 0x8F; // F4 90.. would be above U+10FFFF
  } else {
    return 0; // 80..C1 and F5..FF never start a character
  }
  if (n < len || p[1] < lo || p[1] > hi)
    return 0;
  for (size_t i = 2; i < len; ++i)
    if ((p[i] & 0xC0) != 0x80)
      return 0;
  return len;
}

/// Where no well-formed sequence starts at `p` (`n` > 0 bytes available):
/// the length (1 to 3) of the maximal subpart there, the longest prefix of
/// a well-formed sequence, or 1. A decoder that replaces each maximal
/// subpart by one U+FFFD (Unicode's recommended practice, what Python's
/// `decode('utf-8', 'replace')` and the WHATWG decoder do) steps by this.
inline size_t utf8_invalid_length(const unsigned char* p, size_t n) {
  auto b0 = p[0];
  size_t len = 0;
  unsigned char lo = 0x80;
  unsigned char hi = 0xBF;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3;
    lo = b0 == 0xE0 ? 0xA0 : 0x80;
    hi = b0 == 0xED ? 0x9F : 0xBF;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4;
    lo = b0 == 0xF0 ? 0x90 : 0x80;
    hi = b0 == 0xF4 ? 0x8F : 0xBF;
  } else {
    return 1;
  }
  if (n < 2 || p[1] < lo || p[1] > hi)
    return 1;
  size_t i = 2;
  while (i < len && i < n && (p[i] & 0xC0) == 0x80)
    ++i;
  return i;
}

/// The code point of the well-formed sequence of `len` bytes at `p` (as
/// utf8_sequence_length measured it).
inline uint32_t utf8_code_point(const unsigned char* p, size_t len) {
  switch (len) {
    case 1: return p[0];
    case 2: return ((p[0] & 0x1Fu) << 6) | (p[1] & 0x3Fu);
    case 3:
      return ((p[0] & 0x0Fu) << 12) | ((p[1] & 0x3Fu) << 6) | (p[2] & 0x3Fu);
    default:
      return ((p[0] & 0x07u) << 18) | ((p[1] & 0x3Fu) << 12)
             | ((p[2] & 0x3Fu) << 6) | (p[3] & 0x3Fu);
  }
}

} // namespace vigil
