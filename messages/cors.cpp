#include "messages/cors.hpp"

#include <algorithm>
#include <charconv>

#include "messages/ascii.hpp"
#include "messages/errors.hpp"

namespace vigil {

namespace {

caf::error bad(std::string text) {
  return caf::make_error(errc::bad_config, std::move(text));
}

bool scheme_char(char c, bool first) {
  if (c >= 'a' && c <= 'z')
    return true;
  return !first && ((c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.');
}

bool host_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.'
         || c == '-' || c == '_';
}

bool valid_scheme(std::string_view s) {
  if (s.empty())
    return false;
  for (size_t i = 0; i < s.size(); ++i)
    if (!scheme_char(s[i], i == 0))
      return false;
  return true;
}

/// Port digits 1..65535; false otherwise.
bool parse_port(std::string_view s, uint16_t& out) {
  unsigned x = 0;
  auto res = std::from_chars(s.data(), s.data() + s.size(), x);
  if (s.empty() || res.ec != std::errc{} || res.ptr != s.data() + s.size()
      || x == 0 || x > 65535)
    return false;
  out = static_cast<uint16_t>(x);
  return true;
}

/// Splits "host[:port]" (IPv6 hosts in brackets); false when malformed.
bool split_host_port(std::string_view hp, std::string_view& host,
                     std::string_view& port) {
  port = {};
  if (hp.starts_with('[')) {
    auto close = hp.find(']');
    if (close == std::string_view::npos)
      return false;
    host = hp.substr(0, close + 1);
    auto rest = hp.substr(close + 1);
    if (rest.empty())
      return true;
    if (rest[0] != ':')
      return false;
    port = rest.substr(1);
    return true;
  }
  auto colon = hp.find(':');
  host = hp.substr(0, colon);
  if (colon != std::string_view::npos)
    port = hp.substr(colon + 1);
  return colon == std::string_view::npos || !port.empty();
}

bool valid_host(std::string_view h) {
  if (h.empty())
    return false;
  if (h.front() == '[')
    return h.size() > 2 && h.back() == ']'
           && std::all_of(h.begin() + 1, h.end() - 1, [](char c) {
                return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')
                       || c == ':' || c == '.';
              });
  return std::all_of(h.begin(), h.end(), host_char);
}

/// An origin taken apart; `ok` false when it is not scheme://host[:port].
struct parsed_origin {
  bool ok = false;
  std::string scheme;
  std::string host;
  /// The explicit port, else the scheme's default (80, 443), else 0.
  uint16_t port = 0;
};

parsed_origin parse_origin(std::string_view text) {
  parsed_origin out;
  auto s = ascii_lower(text);
  auto sep = s.find("://");
  if (sep == std::string::npos || !valid_scheme(std::string_view{s}.substr(0, sep)))
    return out;
  out.scheme = s.substr(0, sep);
  std::string_view rest = std::string_view{s}.substr(sep + 3);
  rest = rest.substr(0, rest.find_first_of("/?#"));
  if (auto at = rest.rfind('@'); at != std::string_view::npos)
    rest = rest.substr(at + 1);
  std::string_view host, port;
  if (!split_host_port(rest, host, port) || !valid_host(host))
    return out;
  out.host = std::string{host};
  if (!port.empty()) {
    if (!parse_port(port, out.port))
      return out;
  } else if (out.scheme == "http") {
    out.port = 80;
  } else if (out.scheme == "https") {
    out.port = 443;
  }
  out.ok = true;
  return out;
}

bool matches(const origin_rule& r, const parsed_origin& o) {
  if (r.scheme != "*" && r.scheme != o.scheme)
    return false;
  if (r.port != 0 && r.port != o.port)
    return false;
  if (r.host == "*")
    return true;
  if (r.subdomains)
    // ".example.com": example.com itself or a name ending in it.
    return o.host == std::string_view{r.host}.substr(1)
           || (o.host.size() > r.host.size() && o.host.ends_with(r.host));
  return o.host == r.host;
}

/// Printable ASCII without spaces: safe to echo in a header.
bool echoable(std::string_view s) {
  return !s.empty() && s.size() <= 2048
         && std::all_of(s.begin(), s.end(),
                        [](char c) { return c > 0x20 && c < 0x7f; });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

} // namespace

caf::expected<origin_rule> parse_origin_rule(std::string_view entry) {
  auto quoted = [&] {
    std::string q;
    for (char c : entry.substr(0, 200))
      q += (c >= 0x20 && c < 0x7f) ? c : '?';
    return "'" + q + "'";
  };
  auto s = ascii_lower(entry);
  while (!s.empty() && s.back() == '/')
    s.pop_back();
  if (s.empty())
    return bad("'': empty (use '*' to allow every origin)");
  for (char c : s)
    if (static_cast<unsigned char>(c) >= 0x7f || c <= 0x20)
      return bad(quoted() + ": only printable ASCII without spaces "
                            "(write international domains in punycode)");
  origin_rule r;
  std::string_view rest = s;
  if (auto sep = rest.find("://"); sep != std::string_view::npos) {
    auto scheme = rest.substr(0, sep);
    if (scheme != "*" && !valid_scheme(scheme))
      return bad(quoted() + ": '" + std::string{scheme}
                 + "' is not a URL scheme");
    r.scheme = std::string{scheme};
    rest = rest.substr(sep + 3);
  }
  if (auto slash = rest.find('/'); slash != std::string_view::npos) {
    if (rest.substr(slash) != "/*")
      return bad(quoted() + ": an origin has no path (give scheme://host:port, "
                            "host or *.domain)");
    rest = rest.substr(0, slash);
  }
  std::string_view host, port;
  if (!split_host_port(rest, host, port))
    return bad(quoted() + ": expected host or host:port");
  if (!port.empty() && port != "*" && !parse_port(port, r.port))
    return bad(quoted() + ": '" + std::string{port}
               + "' is not a port (1 to 65535)");
  if (host == "*") {
    r.host = "*";
  } else if (host.starts_with("*.")) {
    if (!valid_host(host.substr(2)) || host.substr(2).starts_with('.'))
      return bad(quoted() + ": expected *.domain");
    r.host = std::string{host.substr(1)};
    r.subdomains = true;
  } else if (valid_host(host)) {
    r.host = std::string{host};
  } else {
    return bad(quoted() + ": '" + std::string{host}
               + "' is not a host name (a '*' may only stand alone or "
                 "begin '*.domain')");
  }
  return r;
}

caf::expected<origin_policy>
origin_policy::parse(const std::vector<std::string>& entries) {
  origin_policy out;
  out.any_ = false;
  out.entries_ = entries;
  for (size_t i = 0; i < entries.size(); ++i) {
    auto rule = parse_origin_rule(entries[i]);
    if (!rule)
      return bad("entry " + std::to_string(i + 1) + " "
                 + error_text(rule.error()));
    if (rule->scheme == "*" && rule->host == "*" && rule->port == 0)
      out.any_ = true;
    out.rules_.push_back(std::move(*rule));
  }
  return out;
}

bool origin_policy::allows(std::string_view origin) const {
  if (any_ || origin.empty())
    return true;
  auto o = parse_origin(origin);
  if (!o.ok)
    return false;
  return std::any_of(rules_.begin(), rules_.end(),
                     [&](const origin_rule& r) { return matches(r, o); });
}

std::string request_origin(std::string_view origin_header,
                           std::string_view referer_header) {
  auto origin = trim(origin_header);
  if (!origin.empty() && origin != "null")
    return std::string{origin};
  auto ref = trim(referer_header);
  auto sep = ref.find("://");
  if (sep == std::string_view::npos)
    return {};
  auto end = ref.find_first_of("/?#", sep + 3);
  auto netloc = ref.substr(sep + 3, end == std::string_view::npos
                                      ? std::string_view::npos
                                      : end - sep - 3);
  if (auto at = netloc.rfind('@'); at != std::string_view::npos)
    netloc = netloc.substr(at + 1);
  if (netloc.empty())
    return {};
  return std::string{ref.substr(0, sep + 3)} + std::string{netloc};
}

std::vector<std::pair<std::string, std::string>>
cors_headers(std::string_view origin_header) {
  std::vector<std::pair<std::string, std::string>> out;
  out.reserve(6);
  auto origin = trim(origin_header);
  if (echoable(origin)) {
    out.emplace_back("Access-Control-Allow-Origin", std::string{origin});
    // The answer differs by Origin: caches must not share it.
    out.emplace_back("Vary", "Origin");
  } else {
    out.emplace_back("Access-Control-Allow-Origin", "*");
  }
  out.emplace_back("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
  // What the browser SDKs send (Relay's list, with the tracing headers).
  out.emplace_back("Access-Control-Allow-Headers",
                   "x-sentry-auth, x-requested-with, x-forwarded-for, origin, "
                   "referer, accept, content-type, content-encoding, "
                   "authentication, authorization, sentry-trace, baggage");
  out.emplace_back("Access-Control-Expose-Headers",
                   "x-sentry-error, x-sentry-rate-limits, retry-after");
  out.emplace_back("Access-Control-Max-Age", std::to_string(cors_max_age));
  return out;
}

} // namespace vigil
