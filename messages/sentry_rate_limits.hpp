#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace vigil {

/// One rate limit as announced to SDKs.
struct rate_limit_entry {
  /// Seconds until the limit lifts.
  int64_t retry_after = 0;
  /// Data categories ("error", "transaction", ...); empty means all.
  std::vector<std::string> categories;
  /// Quota scope: "organization", "project", "key" (may be empty).
  std::string scope;
  /// Why, e.g. "key_quota" (may be empty, then omitted).
  std::string reason_code;
};

/// Formats the X-Sentry-Rate-Limits header value as Relay does:
/// "retry_after:cat1;cat2:scope[:reason_code]", entries joined by ", ".
/// The scope field is always present (even when empty) because the SDKs
/// split each entry into at least three ':'-separated fields and skip an
/// entry with fewer. Negative retry_after values are clamped to 0; category,
/// scope and reason text has ':', ',' and ';' removed so an entry cannot
/// break the header's structure.
std::string format_rate_limits(const std::vector<rate_limit_entry>& limits);

} // namespace vigil
