#include "messages/json_writer.hpp"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>

#include <nlohmann/json.hpp>

#include "messages/text_excerpt.hpp"
#include "messages/utf8.hpp"

namespace vigil {

namespace {

constexpr uint64_t ones = 0x0101010101010101ULL;
constexpr uint64_t highs = 0x8080808080808080ULL;

/// Whether some byte of `w` is below `n` (n <= 0x80).
constexpr bool has_less(uint64_t w, uint64_t n) {
  return ((w - n * ones) & ~w & highs) != 0;
}

constexpr bool has_byte(uint64_t w, unsigned char c) {
  auto x = w ^ (c * ones);
  return ((x - ones) & ~x & highs) != 0;
}

/// Whether all eight bytes of `w` are printable ASCII other than `"` and
/// `\`, i.e. go out as they are. Most strings vigil writes (ids, names,
/// reprs of ASCII values) are all such bytes: they are copied in one run.
constexpr bool plain_word(uint64_t w) {
  return (w & highs) == 0 && !has_less(w, 0x20) && !has_byte(w, '"')
         && !has_byte(w, '\\');
}

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
  out.reserve(out.size() + n + 2);
  out.push_back('"');
  size_t run = 0; // start of the pending run of bytes that go out as they are
  size_t i = 0;
  while (i < n) {
    for (uint64_t w; i + 8 <= n; i += 8) {
      std::memcpy(&w, p + i, 8);
      if (!plain_word(w))
        break;
    }
    if (i >= n)
      break;
    auto c = p[i];
    if (c < 0x80) {
      if (c >= 0x20 && c != '"' && c != '\\') {
        ++i;
        continue;
      }
      out.append(s.data() + run, i - run);
      append_escape(out, c);
      run = ++i;
      continue;
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
