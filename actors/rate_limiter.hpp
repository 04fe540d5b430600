#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include <caf/expected.hpp>
#include <caf/replies_to.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include "actors/backends/rate_limiter.hpp"
#include "actors/mailbox_batch.hpp"
#include "actors/status.hpp"
#include "messages/type_ids.hpp"

namespace vigil {

class config;

/// Answers Sentry-style rate-limit questions (`auth.user-rate-limit`,
/// `auth.ip-rate-limit`, notifications). Runs detached and batches what
/// waits in its mailbox into one backend call. A store error fails open:
/// the answer is "not limited", counted in `failed_open` and logged at
/// most once a minute.
using rate_limiter_actor = caf::typed_actor<
  /// Counts one call and answers whether it is limited.
  caf::replies_to<rate_limit_check>::with<rate_limit_result>,
  /// Self-sent: decide what is queued.
  caf::reacts_to<batch_atom>,
  /// Answers the actor's status and figures.
  caf::replies_to<status_atom>::with<actor_status>>;

/// State of a rate limiter actor.
struct rate_limiter_state {
  static inline const char* name = "ratelimiter.actor";

  rate_limiter_options opts;
  std::unique_ptr<rate_limiter_backend> backend;
  mailbox_batch<rate_limit_check, rate_limit_result> batch;
  status_counters counters;
  /// Calls answered "not limited" because the store failed.
  uint64_t failed_open = 0;
  std::chrono::steady_clock::time_point last_warning{};
};

/// Spawn with `spawn<caf::detached>(rate_limiter_service, opts)`.
rate_limiter_actor::behavior_type
rate_limiter_service(rate_limiter_actor::stateful_pointer<rate_limiter_state> self,
                     rate_limiter_options opts);

/// Options from config: ratelimiter.backend and ratelimiter.options.cluster
/// (a name in redis.clusters).
caf::expected<rate_limiter_options> make_rate_limiter_options(const config& cfg);

/// The check Sentry's login form makes for `auth.ip-rate-limit`: key
/// `auth:ip:{ip}`, `limit_per_minute` calls per 60 s window (Sentry's
/// RateLimiter.window). Empty when the limit is 0 or less (the option is
/// off: nothing to check). Use: read `cfg.get_int("auth.ip-rate-limit")`,
/// send the check to the rate limiter actor, answer 429 if `limited`.
std::optional<rate_limit_check> api_ip_check(int64_t limit_per_minute,
                                             std::string_view ip);

/// The check Sentry's login form makes for `auth.user-rate-limit`: key
/// `auth:username:{name}` with the name trimmed (" \n\t\r\0") and
/// lower-cased (ASCII) as Sentry's clean_username does, `limit_per_minute`
/// calls per 60 s window. Empty when the limit is 0 or less or the name is
/// empty.
std::optional<rate_limit_check> api_user_check(int64_t limit_per_minute,
                                               std::string_view username);

} // namespace vigil
