#pragma once

// The write buffer's actor: the node's door to the buffer store. It sums
// increments of the same row before they reach the store (one HINCRBY for
// many events of one issue), writes them in batches, and holds what the
// store could not take until it can.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <caf/expected.hpp>
#include <caf/replies_to.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include "actors/backends/buffer.hpp"
#include "actors/status.hpp"
#include "messages/type_ids.hpp"

namespace vigil {

class config;

/// What the buffer actor needs (from buffer.backend and buffer.options).
struct buffer_service_options {
  buffer_backend_options store;
  /// How long increments told without a reply wait to be summed with
  /// later ones before they are written (local-flush-ms).
  std::chrono::milliseconds local_flush{100};
  /// Bounds on what the actor holds unwritten (rows and their bytes): past
  /// either, new increments are refused (counted in `refused`).
  size_t max_held_rows = 100000;
  size_t max_held_bytes = 64 * 1024 * 1024;
};

/// The write buffer. Runs detached (its store calls block for at most the
/// store's timeout).
///
/// Two ways in: a request with a vector of increments (or a buffer_batch
/// of them summed per row) is answered `true`
/// once the store holds them (everything waiting in the mailbox joins the
/// same write, so concurrent callers share one round trip); a single
/// increment told without a reply waits up to `local_flush` to be summed
/// with others of its row. A write the store refuses keeps the increments
/// held, summed with later ones, and retried every `local_flush` (backing
/// off to 5 s); requests it carried are answered `false`: their
/// increments are held, not lost, but not yet durable.
using buffer_actor = caf::typed_actor<
  /// Adds increments; answers whether the store holds them.
  caf::replies_to<incr_atom, std::vector<buffer_incr>>::with<bool>,
  /// The same with increments summed per row by the sender (cheaper: one
  /// merge per row instead of one per increment).
  caf::replies_to<incr_atom, buffer_batch>::with<bool>,
  /// Adds one increment; no reply.
  caf::reacts_to<incr_atom, buffer_incr>,
  /// Self-sent: write what is held now.
  caf::reacts_to<batch_atom>,
  /// Self-sent: the local-flush-ms window (or a retry's backoff) ended.
  caf::reacts_to<poll_atom>,
  /// Writes everything held; answers whether the store took it all (the
  /// node's shutdown asks before it exits).
  caf::replies_to<flush_atom>::with<bool>,
  /// Answers the actor's status and figures.
  caf::replies_to<status_atom>::with<actor_status>>;

/// Rows the buffer actor holds, summed, not yet in the store.
struct buffer_held {
  std::unordered_map<std::string, buffer_incr> rows;
  size_t bytes = 0;
  /// Requests whose increments are among `rows`.
  std::vector<caf::typed_response_promise<bool>> waiting;
  /// Where `add` builds a row's key (its capacity reused).
  std::string scratch_key;

  /// Sums `x` into its row; returns false (and adds nothing) when the
  /// bounds would be passed by a new row.
  bool add(buffer_incr x, size_t max_rows, size_t max_bytes);
};

/// State of the buffer actor.
struct buffer_state {
  static inline const char* name = "buffer.actor";

  buffer_service_options opts;
  std::unique_ptr<buffer_backend> backend;
  buffer_held held;
  bool write_scheduled = false;
  bool window_armed = false;
  /// Consecutive failed writes (for the retry backoff).
  int failures = 0;
  status_counters counters;
  /// Increments taken, writes made, rows written, increments refused.
  uint64_t increments = 0;
  uint64_t writes = 0;
  uint64_t rows_written = 0;
  uint64_t refused = 0;
  std::chrono::steady_clock::time_point last_warning{};
};

/// Spawn with `spawn<caf::detached>(buffer_service, opts)`.
buffer_actor::behavior_type
buffer_service(buffer_actor::stateful_pointer<buffer_state> self,
               buffer_service_options opts);

/// Options from config: buffer.backend, buffer.options (cluster,
/// pending-partitions, local-flush-ms).
caf::expected<buffer_service_options> make_buffer_service_options(const config& cfg);

} // namespace vigil
