#pragma once

// Cross-origin rules of the ingest endpoints, as Relay and Sentry apply
// them: the Access-Control-* headers every answer carries (so that a
// browser SDK can read a 429's rate limits), and a project's
// `allowed-domains` (Sentry's `sentry:origins`), which decide whether a
// request coming from a web page's origin is taken. Pure: no I/O.

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <caf/expected.hpp>

namespace vigil {

/// One entry of `allowed-domains`, parsed.
struct origin_rule {
  /// "*" or a scheme such as "https".
  std::string scheme = "*";
  /// "*", a host ("example.com"), or a suffix wildcard ("*.example.com",
  /// kept as ".example.com" with `subdomains` set).
  std::string host = "*";
  /// True for "*.example.com": example.com and all its subdomains.
  bool subdomains = false;
  /// The port an origin must use; 0 = any.
  uint16_t port = 0;
};

/// Parses one entry (lowercased, a trailing '/' ignored): `*`,
/// `example.com` (any scheme, any port), `*.example.com` (the domain and
/// its subdomains), `https://example.com` (that scheme), `host:port` or
/// `*:port` (that port only), and `scheme://host:port` combinations. An
/// entry with a path other than `/*`, non-ASCII characters (write IDNs in
/// punycode) or a bad port fails with a text that quotes it.
caf::expected<origin_rule> parse_origin_rule(std::string_view entry);

/// A project's allowed origins; default-constructed it allows every origin
/// (Sentry's default `["*"]`).
class origin_policy {
public:
  origin_policy() = default;

  /// Parses the list; fails naming the entry ("entry 2 'a b': ...").
  static caf::expected<origin_policy>
  parse(const std::vector<std::string>& entries);

  /// True when the list contains "*" (or is the default).
  bool allows_any() const {
    return any_;
  }

  /// Whether a request from `origin` (as `request_origin` derives it;
  /// "" = none) is taken. A request without an origin is always taken, as
  /// Relay does: server SDKs send none. An empty list refuses every origin.
  bool allows(std::string_view origin) const;

  /// The entries as given, for messages and status.
  const std::vector<std::string>& entries() const {
    return entries_;
  }

private:
  bool any_ = true;
  std::vector<origin_rule> rules_;
  std::vector<std::string> entries_{"*"};
};

/// The origin a request comes from, as Sentry's origin_from_request finds
/// it: the Origin header unless it is empty or "null", else
/// scheme://host[:port] of the Referer; "" when neither gives one.
std::string request_origin(std::string_view origin_header,
                           std::string_view referer_header);

/// The Access-Control-* headers of every answer of the store and envelope
/// endpoints, preflights included: Allow-Origin (the request's Origin
/// header, or "*" when it has none or one that cannot be echoed safely,
/// with Vary: Origin when echoed), Allow-Methods, Allow-Headers,
/// Expose-Headers (x-sentry-error, x-sentry-rate-limits, retry-after) and
/// Max-Age.
std::vector<std::pair<std::string, std::string>>
cors_headers(std::string_view origin_header);

/// Access-Control-Max-Age of a preflight, in seconds (Relay's).
inline constexpr int cors_max_age = 3600;

} // namespace vigil
