#pragma once

// The ingest pipeline behind the store and envelope endpoints. HTTP threads
// parse, authenticate and normalize; they hand each request to a bounded
// `ingest_queue` (actors/ingest_queue.hpp) as an `ingest_job` with a
// completion callback. The ingest
// actor takes the queue in batches: one quota decision for the batch (on its
// own thread for the in-process store, else one request to the quota
// actor), one database transaction for its events, their groups and the
// outbox record of their post_process tasks, one broker publish for those
// tasks, then the answers. A request is answered 200 only after its events
// and their tasks are durable (in the outbox) and the tasks queued.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/backends/filestore.hpp"
#include "actors/buffer.hpp"
#include "actors/ingest_outbox.hpp"
#include "actors/ingest_queue.hpp"
#include "actors/quota.hpp"
#include "actors/status.hpp"
#include "actors/tsdb.hpp"
#include "messages/type_ids.hpp"

namespace vigil {

class broker;
class config;
class event_store;
class quota_backend;

/// What the ingest actor needs.
struct ingest_options {
  std::shared_ptr<ingest_queue> queue;
  quota_actor quotas;
  /// Set when the quota store is in this process (quotas.backend memory):
  /// opens a backend on the same counters as the quota actor's, which the
  /// ingest actor then asks directly, on its own thread, instead of a round
  /// trip through the quota actor per batch. Memory backends never block.
  std::function<std::unique_ptr<quota_backend>()> open_local_quotas;
  /// Opens the event store (db.url).
  std::function<caf::expected<std::unique_ptr<event_store>>()> open_store;
  /// Connects to the broker the post_process tasks go to.
  std::function<caf::expected<std::unique_ptr<broker>>()> open_broker;
  /// Queue of the post_process tasks.
  std::string task_queue = "celery";
  size_t batch_size = 1000;
  /// Bound on the quota request.
  std::chrono::milliseconds quota_timeout{5000};
  /// What a failed quota request means (quotas.fail-open).
  bool fail_open = true;
  /// The write buffer, when the node runs one.
  std::optional<buffer_actor> buffer;
  /// Existing groups' times_seen and last_seen go through `buffer` instead
  /// of the ingest transaction (buffer.ingest-counters, resolved by
  /// ingest_counts_through_buffer). Ignored without a buffer.
  bool buffer_group_counts = false;
  /// Bound on the buffer's answer; past it the batch is answered anyway
  /// (the buffer actor holds and retries the increments).
  std::chrono::milliseconds buffer_timeout{5000};
  /// The time-series store, when the node runs one: one tell per batch.
  std::optional<tsdb_actor> tsdb;
  /// Where accepted envelope attachments are kept (filestore.backend); none:
  /// attachments are counted but not kept. Its calls block this detached
  /// actor for at most the backend's timeouts, and only for batches that
  /// hold attachments.
  std::shared_ptr<filestore_backend> filestore;
};

/// buffer.ingest-counters resolved: `buffer` and `transaction` as they
/// say, `auto` = buffer when buffer.backend is redis (an increment the
/// buffer acknowledged survives a SIGKILL there), transaction when it is
/// memory (the memory store dies with the process, the transaction's
/// count does not).
bool ingest_counts_through_buffer(const config& cfg);

/// Drives the pipeline: takes batches from the queue, decides quotas,
/// stores, publishes and answers. Runs detached (the store and the broker
/// block).
using ingest_actor = caf::typed_actor<
  /// Work arrived in the queue.
  caf::reacts_to<poll_atom>,
  /// Answers the actor's status and figures.
  caf::replies_to<status_atom>::with<actor_status>>;

/// State of the ingest actor.
struct ingest_state {
  static inline const char* name = "ingest.actor";
  ingest_options opts;
  std::unique_ptr<event_store> store;
  std::unique_ptr<broker> conn;
  /// The post_process tasks between the store and the broker.
  std::unique_ptr<task_outbox> outbox;
  /// Whether `conn`'s broker keeps what it was given past this process.
  bool broker_durable = true;
  /// When the outbox upkeep (republish, idle deletions) is next due; a
  /// poll is scheduled for it. Zero: none scheduled. Times here are the
  /// actor's clock (`self->clock()`: steady_clock, or the deterministic
  /// scheduler's in tests).
  std::chrono::steady_clock::time_point upkeep_at;
  /// See ingest_options::open_local_quotas.
  std::unique_ptr<quota_backend> local_quotas;
  /// A quota request is out (its batch lives in the request's handlers;
  /// at most one more batch is being stored meanwhile).
  bool busy = false;
  status_counters counters;
  uint64_t batches = 0;
  uint64_t events_stored = 0;
  uint64_t items_rejected = 0;
  /// Items an inbound filter dropped.
  uint64_t items_filtered = 0;
  /// Attachments kept in the filestore.
  uint64_t attachments_stored = 0;
  uint64_t unavailable = 0;
  /// Quota checks this actor answered itself because they failed (its
  /// in-process store failed, or the quota actor did not answer).
  quota_outage outage;
  /// When a failing store or broker was last logged: a dead one fails
  /// every batch, and is logged once a minute.
  std::chrono::steady_clock::time_point last_failure_log;
  /// Group counts handed to the buffer (one per group per batch), and the
  /// batches whose buffer answer was false or late (answered anyway: the
  /// buffer actor holds their increments and retries them).
  uint64_t buffer_incrs = 0;
  uint64_t buffer_unconfirmed = 0;
  std::chrono::steady_clock::time_point last_buffer_log;
  /// Batches told to the TSDB.
  uint64_t tsdb_batches = 0;
  /// Quantities per data category, in the category's unit (attachments in
  /// bytes, span containers per span): accepted, rejected by a quota.
  std::map<std::string, std::pair<uint64_t, uint64_t>> by_category;
};

/// Spawn with `spawn<caf::detached>(ingest_service, opts)`.
ingest_actor::behavior_type
ingest_service(ingest_actor::stateful_pointer<ingest_state> self,
               ingest_options opts);

} // namespace vigil
