#include "messages/text_excerpt.hpp"

#include "messages/utf8.hpp"

namespace vigil {

namespace {

bool continuation(char c) {
  return (static_cast<unsigned char>(c) & 0xC0) == 0x80;
}

} // namespace

std::string_view utf8_prefix(std::string_view s, size_t max_bytes) {
  if (s.size() <= max_bytes)
    return s;
  // A cut before a byte that is no continuation byte splits no character.
  // Before one, look back (a character is at most 4 bytes) for the byte
  // that started its sequence: the cut moves there only when that sequence
  // is well-formed and does not fit. Anything else is not UTF-8 anyway, and
  // cutting inside it splits no character.
  auto p = reinterpret_cast<const unsigned char*>(s.data());
  for (size_t back = 1; back <= 3 && back <= max_bytes; ++back) {
    if (!continuation(s[max_bytes - back + 1]))
      break;
    auto start = max_bytes - back;
    if (!continuation(s[start])) {
      auto len = utf8_sequence_length(p + start, s.size() - start);
      return s.substr(0, len > back ? start : max_bytes);
    }
  }
  return s.substr(0, max_bytes);
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
