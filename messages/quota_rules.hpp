#pragma once

// The pure quota rules, after Relay's quota model (relay-quotas) and
// Sentry's quota checks: which quotas apply to an item, their fixed windows
// and counter keys, validation, and how rejections combine. No I/O: the
// quota backends (actors/backends/) and the configuration (config/) share
// them.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <caf/error.hpp>

#include "messages/quota_messages.hpp"

namespace vigil {

/// Seconds Relay waits before retrying after a reject-all (limit 0) quota.
constexpr int64_t reject_all_secs = 60;

/// Seconds a counter outlives its window (Sentry's and Relay's grace).
constexpr int64_t quota_grace_secs = 60;

/// True if `q` applies to `s`: its scope id (if any) names the item's
/// organization, project or key, and its categories (if any) contain the
/// item's category (Relay's Quota::matches).
bool quota_matches(const quota_config& q, const quota_scoping& s);

/// The fixed window of a quota at time `now`, shifted per organization.
struct quota_window {
  /// `(now - shift) / window`.
  int64_t slot = 0;
  /// When the window ends, Unix seconds: `(slot + 1) * window + shift`.
  int64_t expiry = 0;
};

/// Computes the window of `q` (which must have window > 0) for `org_id`:
/// `shift = org_id % window`, or 0 for global quotas.
quota_window make_quota_window(const quota_config& q, uint64_t org_id,
                               int64_t now);

/// The Redis key of a quota's counter in the window `slot`, as Relay names
/// it: `quota:{id}{{org}}{subscope}:{slot}` (no subscope for organization
/// and global scope).
std::string quota_counter_key(const quota_config& q, const quota_scoping& s,
                              int64_t slot);

/// The refund key of a counter: "r:" + counter key.
std::string quota_refund_key(std::string_view counter_key);

/// Checks a quota for what Relay and Sentry reject: a negative limit other
/// than -1, a limit without a window, a tracked quota without an id, an
/// unknown scope. Returns the first problem; its text starts with the field
/// ("window: expected an integer >= 1 ...").
caf::error validate_quota(const quota_config& q);

/// Keeps the quotas of `c` that take part in a check: matching, and either
/// reject-all (limit 0) or tracked (id and window set); Relay skips the
/// rest.
std::vector<const quota_config*> active_quotas(const quota_check& c);

/// Combines the rejections of one check as Relay and Sentry do: the longest
/// retry_after wins, ties go to the first.
void add_rejection(quota_decision& d, int64_t retry_after,
                   const std::string& reason_code);

} // namespace vigil
