#pragma once

// The metrics actor: once an interval (metrics.interval) it collects every
// thread's aggregates (actors/metrics.hpp) and hands them to the backend,
// and it asks every actor of the node's directory for its status (with a
// short timeout) to record their mailbox sizes and processed counts as
// gauges, emitted the interval after.

#include <chrono>
#include <memory>

#include <caf/replies_to.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "actors/actor_directory.hpp"
#include "actors/backends/metrics.hpp"
#include "actors/status.hpp"
#include "config/metrics_options.hpp"
#include "messages/type_ids.hpp"

namespace vigil {

/// The metrics actor. Runs detached: the datadog backend's POST blocks (for
/// less than the interval).
using metrics_actor = caf::typed_actor<
  /// Self-sent each interval: emit, then poll the directory.
  caf::reacts_to<metrics_atom>,
  /// Emits what was recorded now (tests; the node's last emission before it
  /// exits); true once the backend had it.
  caf::replies_to<flush_atom>::with<bool>,
  /// Answers the actor's status; extra holds the backend and its figures.
  caf::replies_to<status_atom>::with<actor_status>>;

/// What the metrics actor needs.
struct metrics_service_options {
  metrics_config config;
  /// The node's actors whose mailbox sizes become gauges (none: no gauges).
  actor_directory_ptr directory;
  /// How long an actor may take to answer its status before it is left out
  /// of that interval's gauges.
  std::chrono::milliseconds status_timeout{500};
  /// The backend (built from `config` by make_metrics_backend).
  std::shared_ptr<metrics_backend> backend;
};

/// State of the metrics actor.
struct metrics_state {
  static inline const char* name = "metrics.actor";
  metrics_service_options opts;
  status_counters counters;
  uint64_t intervals = 0;
  /// Directory polls still waiting for answers (one poll at a time).
  bool polling = false;
  uint64_t not_answering = 0;
};

/// Spawn with `spawn<caf::detached>(metrics_service, opts)`. Turns the
/// process-wide recording on (off for the dummy backend) with the
/// configured sample rate.
metrics_actor::behavior_type
metrics_service(metrics_actor::stateful_pointer<metrics_state> self,
                metrics_service_options opts);

} // namespace vigil
