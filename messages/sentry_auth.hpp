#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <caf/expected.hpp>

namespace vigil {

/// The fields of an X-Sentry-Auth header that ingestion uses.
struct sentry_auth {
  std::string public_key;
  std::string version;
  std::string client;
};

/// Parses an X-Sentry-Auth header value such as
/// "Sentry sentry_key=abc, sentry_version=7, sentry_client=x/1.0".
/// The "Sentry" prefix is optional (case-insensitive); pairs are separated
/// by commas and/or spaces; values may be double-quoted; unknown fields
/// (sentry_secret, sentry_timestamp, ...) are ignored.
/// Errors: `errc::missing_field` without a non-empty `sentry_key`,
/// `errc::malformed` for a pair without '='.
caf::expected<sentry_auth> parse_sentry_auth(std::string_view header);

/// Returns the value of query parameter `name` in `query` (the part after
/// '?', which may be included), percent-decoded and with '+' as space;
/// nullopt if absent. The first occurrence wins.
std::optional<std::string> query_param(std::string_view query,
                                       std::string_view name);

/// The parts of a Sentry DSN.
struct parsed_dsn {
  std::string public_key;
  uint64_t project_id = 0;
  std::string host;
  uint16_t port = 0;
};

/// Parses "http(s)://<key>[:<secret>]@host[:port]/[path/]<project_id>".
/// Without a port, `port` is 80 for http and 443 for https. An IPv6 host is
/// kept with its brackets. Error messages never contain the secret.
/// Errors: `errc::malformed` (scheme, missing key, host, bad port, a
/// project id that is not a positive integer).
caf::expected<parsed_dsn> parse_dsn(std::string_view dsn);

/// Returns true if `key` is exactly 32 hexadecimal digits.
bool is_public_key(std::string_view key);

} // namespace vigil
