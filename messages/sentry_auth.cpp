#include "messages/sentry_auth.hpp"

#include <charconv>

#include "messages/errors.hpp"
#include "messages/percent_encoding.hpp"

namespace vigil {

namespace {

bool is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')
         || (c >= 'A' && c <= 'F');
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size())
    return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i] >= 'A' && a[i] <= 'Z' ? a[i] - 'A' + 'a' : a[i];
    char y = b[i] >= 'A' && b[i] <= 'Z' ? b[i] - 'A' + 'a' : b[i];
    if (x != y)
      return false;
  }
  return true;
}

bool is_sep(char c) {
  return c == ' ' || c == ',' || c == '\t';
}

} // namespace

bool is_public_key(std::string_view key) {
  if (key.size() != 32)
    return false;
  for (char c : key)
    if (!is_hex(c))
      return false;
  return true;
}

caf::expected<sentry_auth> parse_sentry_auth(std::string_view header) {
  size_t i = 0;
  auto skip = [&] {
    while (i < header.size() && is_sep(header[i]))
      ++i;
  };
  skip();
  // The optional scheme word: "Sentry" followed by a separator.
  if (header.size() - i >= 6 && iequals(header.substr(i, 6), "sentry")
      && (header.size() - i == 6 || is_sep(header[i + 6])))
    i += 6;
  sentry_auth out;
  while (true) {
    skip();
    if (i >= header.size())
      break;
    auto key_begin = i;
    while (i < header.size() && header[i] != '=' && !is_sep(header[i]))
      ++i;
    auto key = header.substr(key_begin, i - key_begin);
    if (i >= header.size() || header[i] != '=')
      return caf::make_error(errc::malformed,
                             "X-Sentry-Auth: a field without '='");
    ++i;
    std::string_view value;
    if (i < header.size() && header[i] == '"') {
      auto close = header.find('"', i + 1);
      if (close == std::string_view::npos)
        return caf::make_error(errc::malformed,
                               "X-Sentry-Auth: unterminated quoted value");
      value = header.substr(i + 1, close - i - 1);
      i = close + 1;
    } else {
      auto value_begin = i;
      while (i < header.size() && !is_sep(header[i]))
        ++i;
      value = header.substr(value_begin, i - value_begin);
    }
    // Real SDKs send the fields once; the first occurrence wins.
    if (key == "sentry_key" && out.public_key.empty())
      out.public_key = value;
    else if (key == "sentry_version" && out.version.empty())
      out.version = value;
    else if (key == "sentry_client" && out.client.empty())
      out.client = value;
  }
  if (out.public_key.empty())
    return caf::make_error(errc::missing_field,
                           "X-Sentry-Auth: no sentry_key");
  return out;
}

std::optional<std::string> query_param(std::string_view query,
                                       std::string_view name) {
  if (auto q = query.find('?'); q != std::string_view::npos)
    query.remove_prefix(q + 1);
  if (auto h = query.find('#'); h != std::string_view::npos)
    query = query.substr(0, h);
  for (auto [key, value] : query_pairs(query))
    if (percent_decode_query(key) == name)
      return percent_decode_query(value);
  return std::nullopt;
}

caf::expected<parsed_dsn> parse_dsn(std::string_view dsn) {
  auto bad = [](const char* what) {
    return caf::make_error(errc::malformed, std::string{"DSN: "} + what);
  };
  parsed_dsn out;
  uint16_t default_port = 0;
  if (dsn.substr(0, 7) == "http://") {
    dsn.remove_prefix(7);
    default_port = 80;
  } else if (dsn.substr(0, 8) == "https://") {
    dsn.remove_prefix(8);
    default_port = 443;
  } else {
    return bad("scheme is not http or https");
  }
  // authority = userinfo@host[:port]; the path follows the first '/'.
  auto slash = dsn.find('/');
  if (slash == std::string_view::npos)
    return bad("no project id");
  auto authority = dsn.substr(0, slash);
  auto path = dsn.substr(slash + 1);
  auto at = authority.rfind('@');
  if (at == std::string_view::npos)
    return bad("no public key");
  auto userinfo = authority.substr(0, at);
  auto hostport = authority.substr(at + 1);
  out.public_key = std::string{userinfo.substr(0, userinfo.find(':'))};
  if (out.public_key.empty())
    return bad("no public key");
  std::string_view host = hostport;
  std::string_view port;
  if (!hostport.empty() && hostport.front() == '[') {
    auto close = hostport.find(']');
    if (close == std::string_view::npos)
      return bad("unterminated IPv6 host");
    host = hostport.substr(0, close + 1);
    auto rest = hostport.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':')
        return bad("junk after IPv6 host");
      port = rest.substr(1);
    }
  } else if (auto colon = hostport.rfind(':');
             colon != std::string_view::npos) {
    host = hostport.substr(0, colon);
    port = hostport.substr(colon + 1);
  }
  if (host.empty() || host == "[]")
    return bad("no host");
  out.host = std::string{host};
  if (port.empty()) {
    out.port = default_port;
  } else {
    unsigned value = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(),
                                     value);
    if (ec != std::errc{} || end != port.data() + port.size() || value == 0
        || value > 65535)
      return bad("invalid port");
    out.port = static_cast<uint16_t>(value);
  }
  // Query or fragment are not part of the project id; one trailing '/' is
  // tolerated.
  path = path.substr(0, path.find_first_of("?#"));
  if (!path.empty() && path.back() == '/')
    path.remove_suffix(1);
  auto id_text = path.substr(path.rfind('/') == std::string_view::npos
                               ? 0
                               : path.rfind('/') + 1);
  if (id_text.empty())
    return bad("no project id");
  auto [end, ec] = std::from_chars(id_text.data(),
                                   id_text.data() + id_text.size(),
                                   out.project_id);
  if (ec != std::errc{} || end != id_text.data() + id_text.size()
      || out.project_id == 0)
    return bad("project id is not a positive integer");
  return out;
}

} // namespace vigil
