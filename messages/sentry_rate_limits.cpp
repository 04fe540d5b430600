#include "messages/sentry_rate_limits.hpp"

#include <string_view>

namespace vigil {

namespace {

/// Appends `s` without the characters that structure the header.
void append_clean(std::string& out, std::string_view s) {
  for (char c : s)
    if (c != ':' && c != ',' && c != ';' && c != '\r' && c != '\n')
      out += c;
}

} // namespace

std::string format_rate_limits(const std::vector<rate_limit_entry>& limits) {
  std::string out;
  for (auto& e : limits) {
    if (!out.empty())
      out += ", ";
    out += std::to_string(e.retry_after < 0 ? 0 : e.retry_after);
    out += ':';
    bool first = true;
    for (auto& cat : e.categories) {
      if (cat.empty())
        continue;
      if (!first)
        out += ';';
      first = false;
      append_clean(out, cat);
    }
    out += ':';
    append_clean(out, e.scope);
    if (!e.reason_code.empty()) {
      out += ':';
      append_clean(out, e.reason_code);
    }
  }
  return out;
}

} // namespace vigil
