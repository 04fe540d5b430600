#pragma once

// The time-series store's actor: ingestion's counts and distinct users go
// in (batched: what waits in the mailbox is one backend call), the API's
// range queries come out.

#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

#include <caf/expected.hpp>
#include <caf/replies_to.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "actors/backends/tsdb.hpp"
#include "actors/status.hpp"
#include "messages/type_ids.hpp"

namespace vigil {

class config;

/// The TSDB. Runs detached (its backend's calls block for at most its
/// timeout). Counts are statistics, not records: when the backend fails,
/// the batch is dropped (counted in `dropped`, logged once a minute) and
/// ingestion goes on. A query first writes what is waiting, so that it
/// sees every count sent before it.
using tsdb_actor = caf::typed_actor<
  /// Adds counts and distinct values; no reply.
  caf::reacts_to<record_atom, std::vector<tsdb_incr>, std::vector<tsdb_record>>,
  /// Self-sent: write what is waiting.
  caf::reacts_to<batch_atom>,
  /// Answers a range or distinct-count query.
  caf::replies_to<tsdb_query>::with<tsdb_answer>,
  /// Answers the actor's status and figures.
  caf::replies_to<status_atom>::with<actor_status>>;

/// State of the TSDB actor.
struct tsdb_state {
  static inline const char* name = "tsdb.actor";

  tsdb_backend_options opts;
  std::unique_ptr<tsdb_backend> backend;
  std::vector<tsdb_incr> incrs;
  std::vector<tsdb_record> records;
  bool scheduled = false;
  /// Items that may wait unwritten; past it new ones are dropped.
  size_t max_waiting = 200000;
  status_counters counters;
  uint64_t written = 0;
  uint64_t dropped = 0;
  uint64_t writes = 0;
  std::chrono::steady_clock::time_point last_warning{};
};

/// Spawn with `spawn<caf::detached>(tsdb_service, opts)`.
tsdb_actor::behavior_type
tsdb_service(tsdb_actor::stateful_pointer<tsdb_state> self,
             tsdb_backend_options opts);

/// Options from config: tsdb.backend, tsdb.options (cluster).
caf::expected<tsdb_backend_options> make_tsdb_options(const config& cfg);

} // namespace vigil
