#include "messages/email_reply.hpp"

#include <vector>

namespace vigil {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'
                        || s.front() == '\r' || s.front() == '\n'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'
                        || s.back() == '\r' || s.back() == '\n'))
    s.remove_suffix(1);
  return s;
}

/// Where the reply ends: a line that starts the quoted part.
bool starts_quote(std::string_view line, std::string_view next) {
  auto t = trim(line);
  if (t.starts_with(">"))
    return true;
  if (line == "-- " || line == "--" || t.starts_with("-----Original Message"))
    return true;
  if (t.starts_with("________________________________"))
    return true;
  // "On Mon, Dec 7, 2026 at 3:04 PM Ann <ann@x> wrote:", which clients
  // may wrap onto a second line.
  if (t.starts_with("On ")) {
    if (t.ends_with("wrote:"))
      return true;
    if (trim(next).ends_with("wrote:"))
      return true;
  }
  return false;
}

} // namespace

std::string visible_reply(std::string_view body_plain) {
  std::vector<std::string_view> lines;
  size_t i = 0;
  while (i <= body_plain.size()) {
    auto eol = body_plain.find('\n', i);
    auto line = body_plain.substr(i, eol == std::string_view::npos
                                       ? std::string_view::npos
                                       : eol - i);
    if (!line.empty() && line.back() == '\r')
      line.remove_suffix(1);
    lines.push_back(line);
    if (eol == std::string_view::npos)
      break;
    i = eol + 1;
  }
  std::string out;
  for (size_t k = 0; k < lines.size(); ++k) {
    auto next = k + 1 < lines.size() ? lines[k + 1] : std::string_view{};
    if (starts_quote(lines[k], next))
      break;
    out.append(lines[k]);
    out += '\n';
  }
  return std::string{trim(out)};
}

} // namespace vigil
