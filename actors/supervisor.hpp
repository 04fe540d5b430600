#pragma once

// One-for-one supervision of a long-lived service actor (ingest, quotas, rate
// limiter). Callers hold the supervisor's handle, never the child's: every
// message is delegated to the current child, so a restarted child is reached
// through the same handle and a caller never talks to a dead one.

#include <chrono>
#include <functional>
#include <string>

#include <caf/actor.hpp>
#include <caf/actor_cast.hpp>
#include <caf/actor_system.hpp>
#include <caf/fwd.hpp>

#include "actors/status.hpp"

namespace vigil {

/// What a supervisor needs to run its child.
struct supervisor_options {
  /// The child's name in logs, e.g. "ingest".
  std::string child_name;
  /// Spawns the child from the supervisor; it must be monitored by `parent`:
  /// `return caf::actor_cast<caf::actor>(parent->spawn<caf::detached +
  /// caf::monitored>(service, opts));`
  std::function<caf::actor(caf::event_based_actor* parent)> spawn_child;
  /// First restart delay, doubling per failure up to `max_backoff`.
  std::chrono::milliseconds min_backoff{100};
  std::chrono::milliseconds max_backoff{30000};
  /// A child that ran this long before failing restarts after min_backoff.
  std::chrono::milliseconds healthy_after{60000};
  /// Bound on the child's answer to a status request.
  std::chrono::milliseconds status_timeout{2000};
};

/// State of a supervisor.
struct supervisor_state {
  static inline const char* name = "supervisor";
  supervisor_options opts;
  /// The running child; invalid while it waits for its restart.
  caf::actor child;
  std::chrono::steady_clock::time_point started;
  std::chrono::milliseconds backoff{0};
  bool stopping = false;
  status_counters counters;
};

/// Spawns a supervisor that starts `opts.spawn_child` and restarts it with
/// exponential backoff whenever it terminates abnormally (an exception, a
/// fatal error). It answers every message the child answers, by delegation;
/// while the child waits for its restart, requests get `errc::unavailable`.
/// A `status_atom` request is answered with the child's status, its
/// `restarts` counting the supervisor's restarts. Exiting the supervisor
/// stops the child.
caf::actor spawn_supervisor(caf::actor_system& sys, supervisor_options opts);

/// `spawn_supervisor` with the handle typed as the child's interface.
template <class Handle>
Handle spawn_supervised(caf::actor_system& sys, supervisor_options opts) {
  return caf::actor_cast<Handle>(spawn_supervisor(sys, std::move(opts)));
}

} // namespace vigil
