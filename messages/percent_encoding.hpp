#pragma once

// Percent-encoding (RFC 3986) as URLs and query strings use it: broker and
// database URLs carry encoded user names and passwords, Sentry SDKs send
// `sentry_key` in the query.

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace vigil {

/// The value of a hex digit (either case), or -1.
int hex_value(char c);

/// Decodes %XX escapes strictly (a URL's user, password or path); false on
/// a broken escape, `out` then holds what was decoded so far.
bool percent_decode(std::string_view in, std::string& out);

/// Decodes a query-string value leniently, as browsers and SDKs write
/// them: %XX escapes and '+' for a space; a broken escape stays as it is.
std::string percent_decode_query(std::string_view in);

/// Splits a query string ("a=1&b&c=3", without '?') into its name and
/// value pairs, as written (not decoded); a pair without '=' has an empty
/// value, and empty pairs ("a=1&&b=2") are skipped.
std::vector<std::pair<std::string_view, std::string_view>>
query_pairs(std::string_view query);

/// Encodes every byte but RFC 3986's unreserved characters.
std::string percent_encode(std::string_view in);

} // namespace vigil
