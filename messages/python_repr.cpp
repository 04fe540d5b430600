#include "messages/python_repr.hpp"

namespace vigil {

std::string python_bytes_repr(std::string_view data) {
  char quote = '\'';
  if (data.find('\'') != std::string_view::npos
      && data.find('"') == std::string_view::npos)
    quote = '"';
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(data.size() + 3);
  out += 'b';
  out += quote;
  for (unsigned char c : data) {
    if (c == static_cast<unsigned char>(quote) || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c < 0x20 || c >= 0x7f) {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 0xf];
    } else {
      out += static_cast<char>(c);
    }
  }
  out += quote;
  return out;
}

} // namespace vigil
