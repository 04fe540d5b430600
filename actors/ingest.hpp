#pragma once

// The ingest pipeline behind the store and envelope endpoints. HTTP threads
// parse, authenticate and normalize; they hand each request to a bounded
// `ingest_queue` as an `ingest_job` with a completion callback. The ingest
// actor takes the queue in batches: one quota decision for the batch (on its
// own thread for the in-process store, else one request to the quota
// actor), one database transaction for its events, their groups and the
// outbox record of their post_process tasks, one broker publish for those
// tasks, then the answers. A request is answered 200 only after its events
// and their tasks are durable (in the outbox) and the tasks queued.

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include <caf/actor_addr.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/ingest_outbox.hpp"
#include "actors/quota.hpp"
#include "actors/status.hpp"
#include "messages/quota_messages.hpp"
#include "messages/sentry_event.hpp"
#include "messages/sentry_rate_limits.hpp"
#include "messages/task_message.hpp"
#include "messages/type_ids.hpp"

namespace vigil {

class broker;
class event_store;
class quota_backend;

/// One envelope item (or the one event of a store request).
struct ingest_item {
  /// Relay's data category, e.g. "error", "transaction", "attachment"; for
  /// an item no quota applies to, the name it is counted under
  /// ("client_report").
  std::string category;
  /// What the item consumes of its category's quotas, in the category's
  /// unit: 1 per event or session, one per span of a span container, the
  /// payload's bytes for an attachment (Relay's Item::quantities).
  int64_t quantity = 1;
  /// False for items no quota applies to (Relay gives client reports no
  /// data category): always accepted, only counted.
  bool limited = true;
  /// Events and transactions: the document to store.
  std::optional<normalized_event> event;
  /// The event as the nodestore keeps it (compressed on the HTTP thread,
  /// so that the single database writer does not).
  std::string encoded;
};

/// What the pipeline answers for one request.
struct ingest_result {
  enum class outcome {
    /// Every item was accepted (some may have been rate limited).
    accepted,
    /// Every counted item was rejected by a quota.
    rate_limited,
    /// The store or broker failed; nothing was kept. Answer 503.
    unavailable,
  };
  outcome status = outcome::accepted;
  /// The id to answer with.
  std::string event_id;
  /// Seconds until the longest rejecting window ends.
  int64_t retry_after = 0;
  /// The rejections, for X-Sentry-Rate-Limits.
  std::vector<rate_limit_entry> limits;
  /// What went wrong, for an unavailable answer.
  std::string detail;
};

/// The answer channel of one job: called once with the pipeline's answer.
/// A job dropped unanswered — its ingest actor died holding it — answers
/// 503 from the destructor, so that no client waits on a lost job.
class ingest_reply {
public:
  ingest_reply() = default;

  template <class F>
    requires(!std::is_same_v<std::decay_t<F>, ingest_reply>
             && std::is_invocable_v<F&, ingest_result>)
  ingest_reply(F fn) : fn_(std::move(fn)) {
    // nop
  }

  ingest_reply(ingest_reply&& other) noexcept : fn_(std::move(other.fn_)) {
    other.fn_ = nullptr;
  }

  ingest_reply& operator=(ingest_reply&& other) noexcept;

  ingest_reply(const ingest_reply&) = delete;
  ingest_reply& operator=(const ingest_reply&) = delete;

  ~ingest_reply();

  /// Delivers the answer; later calls do nothing.
  void operator()(ingest_result res);

  /// Lets go without answering: the caller answers by other means (a job
  /// the queue refused).
  void cancel() {
    fn_ = nullptr;
  }

private:
  std::function<void(ingest_result)> fn_;
};

/// One request waiting for the pipeline.
struct ingest_job {
  quota_scoping scoping; // organization, project, key; category per item
  std::vector<quota_config> quotas;
  std::vector<ingest_item> items;
  std::string event_id;
  /// Called once with the answer, from the ingest actor's thread.
  ingest_reply done;
};

/// The memory a queued job holds, as the queue's byte bound counts it: the
/// events' JSON and their encoded form, and the bookkeeping around them.
size_t job_bytes(const ingest_job& job);

/// A hand-over from HTTP threads to the ingest actor, bounded by jobs and by
/// bytes (ingest.queue-size, ingest.queue-bytes).
class ingest_queue {
public:
  explicit ingest_queue(size_t capacity,
                        size_t byte_capacity = default_byte_capacity)
    : capacity_(capacity), byte_capacity_(byte_capacity) {
    // nop
  }

  /// ingest.queue-bytes' default (128 MiB).
  static constexpr size_t default_byte_capacity = 128 * 1024 * 1024;

  /// Wakes `actor` with a poll when work arrives while it is idle.
  void attach(caf::actor_addr actor);

  /// Queues a job; false when the queue holds `capacity` jobs or the job's
  /// bytes would take it past `byte_capacity` (answer 503). A job larger
  /// than the whole byte bound still enters an empty queue, so that one
  /// request within the size limits is never refused forever.
  bool push(ingest_job&& job);

  /// Takes up to `max` jobs in arrival order.
  std::vector<ingest_job> take(size_t max);

  size_t size() const;
  size_t bytes() const;
  size_t capacity() const {
    return capacity_;
  }
  size_t byte_capacity() const {
    return byte_capacity_;
  }

private:
  mutable std::mutex mtx_;
  /// Each job with its bytes as counted when it entered.
  std::deque<std::pair<ingest_job, size_t>> jobs_;
  size_t bytes_ = 0;
  size_t capacity_;
  size_t byte_capacity_;
  bool signaled_ = false;
  caf::actor_addr actor_;
};

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
};

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
  /// poll is scheduled for it. Zero: none scheduled.
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
  uint64_t unavailable = 0;
  /// When a failing store or broker was last logged: a dead one fails
  /// every batch, and is logged once a minute.
  std::chrono::steady_clock::time_point last_failure_log;
  /// Quantities per data category, in the category's unit (attachments in
  /// bytes, span containers per span): accepted, rejected by a quota.
  std::map<std::string, std::pair<uint64_t, uint64_t>> by_category;
};

/// Spawn with `spawn<caf::detached>(ingest_service, opts)`.
ingest_actor::behavior_type
ingest_service(ingest_actor::stateful_pointer<ingest_state> self,
               ingest_options opts);

/// The task `vigil.events.post_process(event_id, project_id, group_id,
/// is_new)` for a stored event, as the pipeline publishes it; `task_id`
/// empty: a new one.
outgoing_task make_post_process_task(const std::string& queue,
                                     const std::string& event_id,
                                     uint64_t project_id, int64_t group_id,
                                     bool is_new,
                                     const std::string& task_id = {});

} // namespace vigil
