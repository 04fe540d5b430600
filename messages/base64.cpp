#include "messages/base64.hpp"

#include <array>
#include <bit>
#include <cstdint>
#include <cstring>

#include "messages/errors.hpp"

namespace vigil {

namespace {

constexpr char alphabet[] =
  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

constexpr uint8_t invalid = 0xFF;

constexpr std::array<uint8_t, 256> make_decode_table() {
  std::array<uint8_t, 256> table{};
  for (auto& x : table)
    x = invalid;
  for (uint8_t i = 0; i < 64; ++i)
    table[static_cast<unsigned char>(alphabet[i])] = i;
  return table;
}

constexpr auto decode_table = make_decode_table();

/// Two output characters per 12 input bits: halves the lookups of encoding.
constexpr std::array<char, 2 * 4096> make_pair_table() {
  std::array<char, 2 * 4096> table{};
  for (size_t i = 0; i < 4096; ++i) {
    table[2 * i] = alphabet[i >> 6];
    table[2 * i + 1] = alphabet[i & 0x3F];
  }
  return table;
}

constexpr auto pair_table = make_pair_table();

caf::error bad_char(std::string_view text, size_t len) {
  size_t pos = 0;
  while (pos < len
         && decode_table[static_cast<unsigned char>(text[pos])] != invalid)
    ++pos;
  auto c = static_cast<unsigned char>(text[pos]);
  std::string msg = "invalid base64 character ";
  if (c > 0x20 && c < 0x7F) {
    msg += '\'';
    msg += static_cast<char>(c);
    msg += '\'';
  } else {
    constexpr char hex[] = "0123456789abcdef";
    msg += "0x";
    msg += hex[c >> 4];
    msg += hex[c & 0xF];
  }
  msg += " at offset " + std::to_string(pos);
  return caf::make_error(errc::malformed, std::move(msg));
}

} // namespace

std::string base64_encode(std::string_view bytes) {
  auto in = reinterpret_cast<const unsigned char*>(bytes.data());
  size_t n = bytes.size();
  std::string out;
  out.resize((n + 2) / 3 * 4);
  char* dst = out.data();
  size_t i = 0;
  // Six bytes per step (while 8 remain to load): one 8-byte big-endian
  // load and one 8-character store instead of six byte loads and two
  // stores in the 3-byte step below.
  for (; i + 8 <= n; i += 6) {
    uint64_t x;
    std::memcpy(&x, in + i, 8);
    if constexpr (std::endian::native == std::endian::little)
      x = __builtin_bswap64(x);
    uint16_t p[4];
    std::memcpy(&p[0], pair_table.data() + 2 * ((x >> 52) & 0xFFF), 2);
    std::memcpy(&p[1], pair_table.data() + 2 * ((x >> 40) & 0xFFF), 2);
    std::memcpy(&p[2], pair_table.data() + 2 * ((x >> 28) & 0xFFF), 2);
    std::memcpy(&p[3], pair_table.data() + 2 * ((x >> 16) & 0xFFF), 2);
    std::memcpy(dst, p, 8);
    dst += 8;
  }
  for (; i + 3 <= n; i += 3) {
    uint32_t x = (uint32_t{in[i]} << 16) | (uint32_t{in[i + 1]} << 8)
                 | in[i + 2];
    std::memcpy(dst, pair_table.data() + 2 * (x >> 12), 2);
    std::memcpy(dst + 2, pair_table.data() + 2 * (x & 0xFFF), 2);
    dst += 4;
  }
  if (auto rest = n - i; rest > 0) {
    uint32_t x = uint32_t{in[i]} << 16;
    if (rest == 2)
      x |= uint32_t{in[i + 1]} << 8;
    *dst++ = alphabet[x >> 18];
    *dst++ = alphabet[(x >> 12) & 0x3F];
    *dst++ = rest == 2 ? alphabet[(x >> 6) & 0x3F] : '=';
    *dst++ = '=';
  }
  return out;
}

caf::expected<std::string> base64_decode(std::string_view text) {
  size_t len = text.size();
  size_t pad = 0;
  while (len > 0 && pad < 2 && text[len - 1] == '=') {
    --len;
    ++pad;
  }
  if (pad > 0 && text.size() % 4 != 0)
    return caf::make_error(errc::malformed,
                           "invalid base64 padding: padded text has length "
                             + std::to_string(text.size())
                             + ", not a multiple of 4");
  if (len % 4 == 1)
    return caf::make_error(errc::malformed,
                           "invalid base64 length " + std::to_string(len)
                             + ": one character left over");
  auto in = reinterpret_cast<const unsigned char*>(text.data());
  std::string out;
  out.resize(len / 4 * 3 + (len % 4 == 0 ? 0 : len % 4 - 1));
  auto dst = reinterpret_cast<unsigned char*>(out.data());
  // OR-ing all table entries detects an invalid character (0xFF) once per
  // quad instead of once per character.
  uint32_t bad = 0;
  size_t i = 0;
  for (; i + 4 <= len; i += 4) {
    uint32_t a = decode_table[in[i]];
    uint32_t b = decode_table[in[i + 1]];
    uint32_t c = decode_table[in[i + 2]];
    uint32_t d = decode_table[in[i + 3]];
    bad |= a | b | c | d;
    uint32_t x = (a << 18) | (b << 12) | (c << 6) | d;
    *dst++ = static_cast<unsigned char>(x >> 16);
    *dst++ = static_cast<unsigned char>(x >> 8);
    *dst++ = static_cast<unsigned char>(x);
  }
  if (auto rest = len - i; rest > 0) {
    uint32_t a = decode_table[in[i]];
    uint32_t b = decode_table[in[i + 1]];
    uint32_t c = rest == 3 ? decode_table[in[i + 2]] : 0;
    bad |= a | b | c;
    uint32_t x = (a << 18) | (b << 12) | (c << 6);
    *dst++ = static_cast<unsigned char>(x >> 16);
    if (rest == 3)
      *dst++ = static_cast<unsigned char>(x >> 8);
  }
  if (bad & 0x80)
    return bad_char(text, len);
  return out;
}

} // namespace vigil
