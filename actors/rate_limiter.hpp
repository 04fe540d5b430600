#pragma once

#include <chrono>
#include <memory>
#include <vector>

#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include "actors/backends/rate_limiter.hpp"
#include "actors/status.hpp"
#include "messages/type_ids.hpp"

namespace vigil {

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
  std::vector<rate_limit_check> checks;
  std::vector<caf::typed_response_promise<rate_limit_result>> waiting;
  bool batch_scheduled = false;
  status_counters counters;
  /// Calls answered "not limited" because the store failed.
  uint64_t failed_open = 0;
  std::chrono::steady_clock::time_point last_warning{};
};

/// Spawn with `spawn<caf::detached>(rate_limiter_service, opts)`.
rate_limiter_actor::behavior_type
rate_limiter_service(rate_limiter_actor::stateful_pointer<rate_limiter_state> self,
                     rate_limiter_options opts);

} // namespace vigil
