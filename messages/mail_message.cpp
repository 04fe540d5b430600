#include "messages/mail_message.hpp"

#include "messages/base64.hpp"

namespace vigil {

namespace {

bool has_line_break(const std::string& s) {
  return s.find_first_of("\r\n") != std::string::npos;
}

bool plain_ascii(const std::string& s) {
  for (unsigned char c : s)
    if (c >= 0x80 || (c < 0x20 && c != '\t'))
      return false;
  return true;
}

} // namespace

std::string mail_problem(const mail_message& m) {
  if (m.to.empty())
    return "a mail needs at least one recipient";
  for (const auto& to : m.to)
    if (to.empty() || has_line_break(to) || to.find('@') == std::string::npos
        || to.find_first_of("<> ,") != std::string::npos)
      return "not a mail address: '" + to.substr(0, 100) + "'";
  if (has_line_break(m.subject))
    return "a subject has no line break";
  if (m.subject.empty() && m.text.empty() && m.html.empty())
    return "a mail needs a subject or a body";
  for (const auto& [name, value] : m.headers)
    if (name.empty() || has_line_break(name) || has_line_break(value)
        || name.find(':') != std::string::npos)
      return "bad header '" + name.substr(0, 100) + "'";
  for (const auto& img : m.images)
    if (img.content_id.empty() || has_line_break(img.content_id)
        || img.content_id.find_first_of("<>") != std::string::npos
        || has_line_break(img.content_type) || has_line_break(img.filename))
      return "an inline image needs a content id without <, > or line "
             "breaks";
  return {};
}

std::string mail_header_value(const std::string& value) {
  if (plain_ascii(value))
    return value;
  // Encoded words of at most 45 bytes of text (60 of base64, 72 with the
  // markers: under RFC 2047's 75), cut on UTF-8 character boundaries;
  // readers join adjacent words and drop the space between them.
  std::string out;
  size_t i = 0;
  while (i < value.size()) {
    size_t end = std::min(value.size(), i + 45);
    while (end < value.size() && end > i
           && (static_cast<unsigned char>(value[end]) & 0xC0) == 0x80)
      --end;
    if (end == i)
      end = std::min(value.size(), i + 45);
    if (!out.empty())
      out += ' ';
    out += "=?utf-8?b?";
    out += base64_encode(std::string_view{value}.substr(i, end - i));
    out += "?=";
    i = end;
  }
  return out;
}

} // namespace vigil
