#include "messages/json_string.hpp"

#include "messages/percent_encoding.hpp"

namespace vigil {

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

namespace {

/// The 4 hex digits at `s[i]` as a number; -1 if they are not.
long read_hex4(std::string_view s, size_t i) {
  if (i + 4 > s.size())
    return -1;
  long x = 0;
  for (size_t k = 0; k < 4; ++k) {
    auto h = hex_value(s[i + k]);
    if (h < 0)
      return -1;
    x = x * 16 + h;
  }
  return x;
}

} // namespace

bool append_unescaped_json(std::string& out, std::string_view raw) {
  for (size_t i = 0; i < raw.size(); ++i) {
    char c = raw[i];
    if (c != '\\') {
      out += c;
      continue;
    }
    if (++i >= raw.size())
      return false;
    switch (raw[i]) {
      case '"': out += '"'; break;
      case '\\': out += '\\'; break;
      case '/': out += '/'; break;
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 't': out += '\t'; break;
      case 'u': {
        auto cp = read_hex4(raw, i + 1);
        if (cp < 0)
          return false;
        i += 4;
        if (cp >= 0xD800 && cp <= 0xDBFF && i + 2 < raw.size()
            && raw[i + 1] == '\\' && raw[i + 2] == 'u') {
          auto lo = read_hex4(raw, i + 3);
          if (lo >= 0xDC00 && lo <= 0xDFFF) {
            i += 6;
            append_utf8(out, static_cast<uint32_t>(
                               0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00)));
            break;
          }
        }
        if (cp >= 0xD800 && cp <= 0xDFFF)
          cp = 0xFFFD;
        append_utf8(out, static_cast<uint32_t>(cp));
        break;
      }
      default:
        return false;
    }
  }
  return true;
}

size_t json_string_close(std::string_view s, size_t begin) {
  for (size_t i = begin; i < s.size(); ++i) {
    if (s[i] == '\\')
      ++i;
    else if (s[i] == '"')
      return i;
  }
  return std::string_view::npos;
}

} // namespace vigil
