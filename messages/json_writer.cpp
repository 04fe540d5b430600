#include "messages/json_writer.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>

#include <nlohmann/json.hpp>
#include <simdjson.h>

#include "messages/text_excerpt.hpp"
#include "messages/utf8.hpp"

namespace vigil {

namespace {

constexpr uint64_t ones = 0x0101010101010101ULL;
constexpr uint64_t highs = 0x8080808080808080ULL;

// Byte tests on eight bytes at once. Each mask has a byte's top bit set
// where the test may hold; the lowest such byte is always right and no
// byte that fails the test is flagged unless one below it passes, so "mask
// is zero" is exact.

/// Bytes below 0x20.
constexpr uint64_t below_space(uint64_t w) {
  return (w - 0x20 * ones) & ~w & highs;
}

/// Bytes equal to `c`.
constexpr uint64_t equal_to(uint64_t w, unsigned char c) {
  auto x = w ^ (c * ones);
  return (x - ones) & ~x & highs;
}

/// Whether no byte of `w` needs an escape (non-ASCII bytes do not).
constexpr bool escape_free_word(uint64_t w) {
  return (below_space(w) | equal_to(w, '"') | equal_to(w, '\\')) == 0;
}

/// Whether all eight bytes of `w` are printable ASCII other than `"` and
/// `\`, i.e. go out as they are. Most strings vigil writes (ids, names,
/// reprs of ASCII values) are all such bytes: they are copied in one run.
constexpr bool plain_word(uint64_t w) {
  return ((w & highs) | below_space(w) | equal_to(w, '"')
          | equal_to(w, '\\'))
         == 0;
}

/// The index of the first word from `i` on that `Test` rejects, or `n`
/// when the rest passes. The last few bytes are tested as the last full
/// word of `p` (overlapping bytes already passed), not one by one.
template <bool (*Test)(uint64_t)>
size_t skip_words(const unsigned char* p, size_t i, size_t n) {
  uint64_t w;
  for (; i + 8 <= n; i += 8) {
    std::memcpy(&w, p + i, 8);
    if (!Test(w))
      return i;
  }
  if (i < n && n >= 8) {
    std::memcpy(&w, p + n - 8, 8);
    if (Test(w))
      return n;
  }
  return i;
}

enum byte_kind : unsigned char { plain_byte, escaped_byte, non_ascii_byte };

/// What each byte value needs: nothing, an escape, or a UTF-8 check.
constexpr auto byte_class = [] {
  std::array<byte_kind, 256> xs{};
  for (size_t c = 0; c < 256; ++c)
    xs[c] = c >= 0x80                           ? non_ascii_byte
            : c < 0x20 || c == '"' || c == '\\' ? escaped_byte
                                                : plain_byte;
  return xs;
}();

/// From this many bytes on, text with non-ASCII characters is validated in
/// one SIMD pass rather than character by character (below it, the call
/// costs more than it saves).
constexpr size_t min_validated = 32;

void append_escape(std::string& out, unsigned char c) {
  static constexpr char hex[] = "0123456789abcdef";
  switch (c) {
    case '"': out += "\\\""; break;
    case '\\': out += "\\\\"; break;
    case '\n': out += "\\n"; break;
    case '\r': out += "\\r"; break;
    case '\t': out += "\\t"; break;
    case '\b': out += "\\b"; break;
    case '\f': out += "\\f"; break;
    default: {
      char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xF]};
      out.append(esc, sizeof(esc));
    }
  }
}

template <class T>
void append_integer(std::string& out, T x) {
  char buf[24];
  auto res = std::to_chars(buf, buf + sizeof(buf), x);
  out.append(buf, res.ptr);
}

} // namespace

void append_json_string(std::string& out, std::string_view s) {
  auto p = reinterpret_cast<const unsigned char*>(s.data());
  auto n = s.size();
  if (out.capacity() - out.size() < n + 2)
    out.reserve(out.size() + n + 2);
  out.push_back('"');
  size_t run = 0; // start of the pending run of bytes that go out as they are
  size_t i = 0;
  // Set once the rest of `s` is known to be valid UTF-8: then only the
  // escapes remain to find, eight bytes at a time, non-ASCII text included.
  bool valid_rest = false;
  bool validated = false;
  while (i < n) {
    i = valid_rest ? skip_words<escape_free_word>(p, i, n)
                   : skip_words<plain_word>(p, i, n);
    // Byte by byte through the word that stopped the scan (through all of
    // a text shorter than a word).
    for (auto stop = std::min(n, i + 8); i < stop;) {
      auto c = p[i];
      switch (byte_class[c]) {
        case plain_byte: ++i; continue;
        case escaped_byte:
          out.append(s.data() + run, i - run);
          append_escape(out, c);
          run = ++i;
          continue;
        default: break;
      }
      if (valid_rest) {
        ++i;
        continue;
      }
      // The first non-ASCII byte of a longer text: one SIMD pass over the
      // rest (i is where a character starts) usually settles it for good.
      if (!validated && n - i >= min_validated) {
        validated = true;
        if (simdjson::validate_utf8(s.data() + i, n - i)) {
          valid_rest = true;
          ++i;
          continue;
        }
      }
      if (auto len = utf8_sequence_length(p + i, n - i); len > 0) {
        i += len;
        continue;
      }
      out.append(s.data() + run, i - run);
      out += "\xEF\xBF\xBD"; // U+FFFD REPLACEMENT CHARACTER
      i += utf8_invalid_length(p + i, n - i);
      run = i;
    }
  }
  out.append(s.data() + run, n - run);
  out.push_back('"');
}

void append_json_string(std::string& out, std::string_view s,
                        size_t max_bytes) {
  append_json_string(out, utf8_prefix(s, max_bytes));
}

void append_json_number(std::string& out, double x) {
  if (!std::isfinite(x)) {
    out += "null";
    return;
  }
  char buf[32];
  auto res = std::to_chars(buf, buf + sizeof(buf), x);
  std::string_view text{buf, static_cast<size_t>(res.ptr - buf)};
  out += text;
  // Keep a float a float for readers that distinguish 1 and 1.0.
  if (text.find_first_of(".eEn") == std::string_view::npos)
    out += ".0";
}

void append_json(std::string& out, const nlohmann::json& x) {
  using kind = nlohmann::json::value_t;
  switch (x.type()) {
    case kind::null: out += "null"; return;
    case kind::boolean:
      out += x.get<bool>() ? "true" : "false";
      return;
    case kind::string:
      append_json_string(out, x.get_ref<const std::string&>());
      return;
    case kind::number_integer: append_integer(out, x.get<int64_t>()); return;
    case kind::number_unsigned: append_integer(out, x.get<uint64_t>()); return;
    case kind::array: {
      out += '[';
      bool first = true;
      for (const auto& y : x) {
        if (!first)
          out += ',';
        first = false;
        append_json(out, y);
      }
      out += ']';
      return;
    }
    case kind::object: {
      out += '{';
      bool first = true;
      for (auto it = x.begin(); it != x.end(); ++it) {
        if (!first)
          out += ',';
        first = false;
        append_json_string(out, it.key());
        out += ':';
        append_json(out, it.value());
      }
      out += '}';
      return;
    }
    default:
      // Floats (nlohmann's shortest round-trip spelling) and binary: no
      // strings in them, so nlohmann's own writer keeps its format.
      out += x.dump();
      return;
  }
}

std::string dump_json(const nlohmann::json& x) {
  std::string out;
  append_json(out, x);
  return out;
}

} // namespace vigil
