#pragma once

// Quota and rate-limit data that travels in CAF messages, with the 0.17
// `inspect` overloads. The semantics follow Relay's quota model
// (relay-quotas/src/quota.rs) and Sentry's RedisRateLimiter.

#include <cstdint>
#include <string>
#include <vector>

#include <caf/meta/type_name.hpp>

namespace vigil {

/// What a quota counts against (Sentry's QuotaScope). The numbers are
/// Sentry's; `unknown` only arises from bad input and never matches.
enum class quota_scope : uint8_t {
  unknown = 0,
  organization = 1,
  project = 2,
  key = 3,
  global = 4,
};

/// Returns the API name: "organization", "project", "key", "global" or
/// "unknown".
const char* to_string(quota_scope x);

/// Parses an API name; `unknown` for anything else.
quota_scope parse_quota_scope(const std::string& name);

// CAF 0.17 serializes enums itself (an `inspect` for one is ambiguous);
// 0.18+ will need an overload here.

/// One quota as Relay reads it (Sentry's QuotaConfig).
struct quota_config {
  /// Names the counter in Redis ("k", "o", ...); empty = not tracked.
  std::string id;
  /// Data categories it applies to; empty = all.
  std::vector<std::string> categories;
  quota_scope scope = quota_scope::organization;
  /// Restricts the quota to one organization, project or key (decimal id);
  /// empty = every one of its scope.
  std::string scope_id;
  /// Items per window; -1 = counted but unlimited; 0 = reject everything
  /// without counting.
  int64_t limit = -1;
  /// Window in seconds; 0 = none (only valid with limit 0).
  int64_t window = 0;
  /// Reported when this quota rejects.
  std::string reason_code;
};

/// @relates quota_config
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, quota_config& x) {
  return f(caf::meta::type_name("vigil.quota_config"), x.id, x.categories,
           x.scope, x.scope_id, x.limit, x.window, x.reason_code);
}

/// Who an item belongs to and what it is (Relay's ItemScoping).
struct quota_scoping {
  uint64_t organization_id = 0;
  uint64_t project_id = 0;
  /// 0 = no key.
  uint64_t key_id = 0;
  /// Data category, e.g. "error", "transaction".
  std::string category = "error";
};

/// @relates quota_scoping
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, quota_scoping& x) {
  return f(caf::meta::type_name("vigil.quota_scoping"), x.organization_id,
           x.project_id, x.key_id, x.category);
}

/// One quota check: consume `quantity` against every quota in `quotas` that
/// matches `scoping`, all or none.
struct quota_check {
  quota_scoping scoping;
  std::vector<quota_config> quotas;
  /// Items to consume; 0 only checks.
  int64_t quantity = 1;
  /// Accept once more while the quota is not yet exhausted, even if this
  /// quantity overshoots it (Relay's over_accept_once).
  bool over_accept_once = false;
};

/// @relates quota_check
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, quota_check& x) {
  return f(caf::meta::type_name("vigil.quota_check"), x.scoping, x.quotas,
           x.quantity, x.over_accept_once);
}

/// The answer to one quota check.
struct quota_decision {
  bool accepted = true;
  /// Seconds to the end of the longest rejecting window (0 if accepted).
  int64_t retry_after = 0;
  /// The reason code of the quota that rejected ("" if accepted).
  std::string reason_code;
};

/// @relates quota_decision
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, quota_decision& x) {
  return f(caf::meta::type_name("vigil.quota_decision"), x.accepted,
           x.retry_after, x.reason_code);
}

/// The usage of one quota in its current window.
struct quota_usage {
  /// Counted minus refunded; -1 when the quota is untracked or its counter
  /// does not exist (Sentry's None).
  int64_t used = -1;
};

/// @relates quota_usage
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, quota_usage& x) {
  return f(caf::meta::type_name("vigil.quota_usage"), x.used);
}

/// One rate-limiter question (Sentry's RateLimiter.is_limited).
struct rate_limit_check {
  /// Any text; hashed with MD5 for the Redis key.
  std::string key;
  /// Calls allowed per window; the call that makes the count exceed it is
  /// limited.
  int64_t limit = 0;
  /// Window in seconds; 0 = 60 (Sentry's default).
  int64_t window = 0;
  /// Optional project id that becomes part of the key (0 = none).
  uint64_t project_id = 0;
};

/// @relates rate_limit_check
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, rate_limit_check& x) {
  return f(caf::meta::type_name("vigil.rate_limit_check"), x.key, x.limit,
           x.window, x.project_id);
}

/// The answer of the rate limiter (Sentry's is_limited_with_value).
struct rate_limit_result {
  bool limited = false;
  /// The count in the current bucket after this call (0 on a failed-open
  /// Redis error).
  int64_t count = 0;
  /// When the bucket ends, Unix seconds.
  int64_t reset_time = 0;
};

/// @relates rate_limit_result
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, rate_limit_result& x) {
  return f(caf::meta::type_name("vigil.rate_limit_result"), x.limited,
           x.count, x.reset_time);
}

} // namespace vigil
