#include "messages/text_excerpt.hpp"

namespace vigil {

namespace {

bool continuation(char c) {
  return (static_cast<unsigned char>(c) & 0xC0) == 0x80;
}

} // namespace

std::string_view utf8_prefix(std::string_view s, size_t max_bytes) {
  if (s.size() <= max_bytes)
    return s;
  // A character is at most 4 bytes: step back over at most 3 continuation
  // bytes to the start of the one that does not fit. Longer runs are not
  // UTF-8 anyway, and cutting inside them splits no character.
  size_t n = max_bytes;
  for (size_t back = 0; back < 3 && n > 0 && continuation(s[n]); ++back)
    --n;
  return s.substr(0, continuation(s[n]) ? max_bytes : n);
}

std::string excerpt(std::string_view s, size_t max_bytes) {
  auto head = utf8_prefix(s, max_bytes);
  std::string out{head};
  if (head.size() < s.size())
    out += "...";
  return out;
}

std::string printable_excerpt(std::string_view s, size_t max_bytes) {
  static constexpr char hex[] = "0123456789abcdef";
  auto head = s.substr(0, max_bytes);
  std::string out;
  out.reserve(head.size() + 8);
  for (char ch : head) {
    auto c = static_cast<unsigned char>(ch);
    if (c == '\\') {
      out += "\\\\";
    } else if (c >= 0x20 && c < 0x7F) {
      out += ch;
    } else {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 0xF];
    }
  }
  if (head.size() < s.size())
    out += "...";
  return out;
}

} // namespace vigil
