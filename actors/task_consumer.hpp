#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <deque>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include "actors/backends/broker.hpp"
#include "actors/backends/result_backend.hpp"
#include "actors/held_deliveries.hpp"
#include "actors/consumed_queues.hpp"
#include "actors/revoked_set.hpp"
#include "actors/running_tasks.hpp"
#include "actors/task_event_queue.hpp"
#include "actors/task_rate_limits.hpp"
#include "actors/status.hpp"
#include "actors/task_worker.hpp"
#include "messages/type_ids.hpp"

namespace vigil {

/// How a consumer takes work from its broker.
struct consumer_options {
  std::string broker_url = "memory://";
  /// Queues to consume, in order.
  std::vector<std::string> queues{"celery"};
  /// Most deliveries held unacknowledged at once (broker.prefetch).
  size_t prefetch = 256;
  /// Most deliveries taken in one round trip.
  size_t fetch_batch = 256;
  /// Seconds before another consumer's unacknowledged delivery is restored.
  double visibility_timeout = 3600;
  /// Seconds between sweeps for deliveries past the visibility timeout.
  double restore_interval = 10;
  /// Longest sleep between fetches while the queues are empty, in seconds.
  double poll_interval = 0.05;
  /// Queue for canvas follow-ups whose signature names none
  /// (tasks.default-queue).
  std::string default_queue = "celery";
  /// Where results go ("" = nowhere).
  std::string result_backend_url;
  int64_t result_expires = 86400;
  /// How results are serialized: "auto" (as the task message), "msgpack"
  /// or "json" (Celery's result_serializer).
  std::string result_serializer = "auto";
  /// Bound on every blocking broker call.
  std::chrono::milliseconds io_timeout{5000};
  /// How long a drain waits for running tasks before giving them back.
  double shutdown_timeout = 30;
  /// Deliveries of a message whose worker died each time after which it
  /// is dead-lettered instead of run again (tasks.max-deliveries; 0 =
  /// unlimited). Counted by the broker (memory and Redis; not yet AMQP).
  uint32_t max_deliveries = 5;
  /// Whether the task supervisor runs consumers and workers on threads of
  /// their own (detached); false only in tests on CAF's deterministic
  /// scheduler.
  bool spawn_detached = true;
  /// Revoked task ids (shared by the node's consumers and its remote
  /// control); a due delivery whose id is in it is not run: REVOKED is
  /// stored and it is acknowledged. Null: nothing is ever revoked.
  std::shared_ptr<revoked_set> revoked;
  /// Per-task time limits and timeout counters (shared with the node's
  /// workers and its remote control); null: messages' and schemas' only.
  std::shared_ptr<task_time_limits> time_limits;
  /// Per-task rate limits (`rate_limit`); null: none.
  std::shared_ptr<task_rate_limits> rate_limits;
  /// The queues consumed now, changed by `add_consumer` /
  /// `cancel_consumer`; null: `queues` for good.
  std::shared_ptr<consumed_queues> consumed;
  /// Celery's task events (the consumer tells task-received and
  /// task-revoked; its workers the rest); null: none.
  std::shared_ptr<task_event_queue> events;
  /// The tasks the node's workers run now (given to the workers); null:
  /// not tracked.
  std::shared_ptr<running_tasks> running;
};

/// Takes task messages off a broker, hands them to workers in batches, and
/// acknowledges each only after its worker reported the outcome (retries
/// republished and dead letters stored first). Owns one broker connection
/// and runs detached, so its blocking calls never stall the scheduler.
///
/// It monitors its workers: when one dies, what it held goes back to the
/// broker at once (broker::restore_unacked, which counts a failed delivery
/// for each) and the slot stays empty until the supervisor puts a new
/// worker in it. A message that comes back with failed deliveries counted
/// is a suspect: it runs alone, on an idle worker, after one more failed
/// delivery was counted for it (so a message that kills the whole process
/// is counted too), and once `max_deliveries` are counted it is
/// dead-lettered instead of run.
using task_consumer_actor = caf::typed_actor<
  /// Self-sent: fetch more work if there is room.
  caf::reacts_to<poll_atom>,
  /// Self-sent: dispatch held messages whose ETA came.
  caf::reacts_to<eta_atom>,
  /// Self-sent: restore deliveries past the visibility timeout.
  caf::reacts_to<sweep_atom>,
  /// A worker's outcomes for a batch it was given.
  caf::reacts_to<std::vector<task_outcome>>,
  /// Stop fetching, give back held messages, wait for running tasks (up to
  /// the shutdown timeout); answers true once nothing is held.
  caf::replies_to<drain_atom>::with<bool>,
  /// Self-sent: the drain's grace period is over.
  caf::reacts_to<deadline_atom>,
  /// From the supervisor: the worker for slot `index`, replacing one that
  /// died.
  caf::reacts_to<caf::put_atom, uint64_t, task_worker_actor>,
  /// Answers the consumer's status and figures.
  caf::replies_to<status_atom>::with<actor_status>,
  /// From the remote control (`inspect reserved/scheduled`): puts what it
  /// holds and has not started into opts.running->held; answers true.
  caf::replies_to<snapshot_atom>::with<bool>>;

/// State of a task consumer.
struct task_consumer_state {
  static inline const char* name = "tasks.consumer";

  /// One worker as its consumer sees it.
  struct worker_slot {
    /// Invalid while the supervisor spawns a replacement for a dead one.
    task_worker_actor handle;
    /// The tags of the batches it was given, oldest first: a worker
    /// answers its batches in order.
    std::deque<std::vector<std::string>> batches;
    /// Running a suspect (alone).
    bool suspect = false;
    /// What `inspect reserved` shows of each batch's deliveries, parallel
    /// to `batches` (kept only with opts.running: a worker's mailbox cannot
    /// be read, and a delivery is moved to its worker).
    std::deque<std::vector<task_info>> infos;
  };

  consumer_options opts;
  std::unique_ptr<broker> conn;
  std::unique_ptr<result_backend> results;
  std::vector<worker_slot> workers;
  /// What this consumer holds, shared with the supervisor for a successor.
  std::shared_ptr<held_deliveries> ledger;

  /// Deliveries fetched and not yet acknowledged (running, waiting for a
  /// worker or ETA-held).
  size_t held = 0;
  /// Due deliveries no worker has been given yet (no worker free to take
  /// them).
  std::vector<delivery> ready;
  /// Due suspects, waiting for an idle worker.
  std::deque<delivery> suspects;
  std::multimap<int64_t, delivery> eta_held;
  /// Tags of the ETA-held deliveries that are suspects.
  std::unordered_set<std::string> eta_suspects;
  int64_t eta_timer_at = 0;
  bool poll_scheduled = false;
  std::chrono::milliseconds idle_backoff{0};
  std::chrono::steady_clock::time_point next_connect;
  std::chrono::milliseconds connect_backoff{0};

  // Work to write back to the broker, in this order.
  std::vector<outgoing_task> to_publish;
  /// Chord header parts to return to the result backend (before
  /// publishing: a completed chord adds its body to to_publish).
  std::vector<chord_part> to_chord;
  /// Chords whose body is in to_publish: their keys go once it is sent.
  std::vector<std::string> chords_done;
  std::vector<stored_result> to_store;
  std::vector<dead_letter> to_bury;
  std::vector<std::string> bury_tags;
  std::vector<std::string> to_ack;
  std::vector<std::string> to_requeue;
  /// Held by a worker or a consumer that died: given back and counted.
  std::vector<std::string> to_restore;

  bool draining = false;
  std::vector<caf::typed_response_promise<bool>> drained;

  status_counters counters;
  uint64_t fetched = 0;
  uint64_t succeeded = 0;
  uint64_t retried = 0;
  uint64_t dead_lettered = 0;
  uint64_t expired = 0;
  /// Not run: revoked before they were due.
  uint64_t revoked = 0;
  uint64_t restored = 0;
  uint64_t reconnects = 0;
  /// Deliveries given back at once after their worker (or the consumer
  /// before this one) died.
  uint64_t given_back = 0;
  uint64_t worker_deaths = 0;
  /// Suspects run alone.
  uint64_t suspects_run = 0;
  /// Dead-lettered after max_deliveries failed deliveries.
  uint64_t poisoned = 0;
  /// Canvas messages sent (callbacks, chain links, errbacks, chord bodies).
  uint64_t canvas_sent = 0;
  /// Chords completed here (body sent or ChordError stored).
  uint64_t chords_completed = 0;
  /// The consumed_queues version `opts.queues` was taken from.
  uint64_t queues_version = 0;
  /// Tags held for their rate-limit token: due when their time comes.
  std::unordered_set<std::string> rate_cleared;
  /// Deliveries held back by a rate limit.
  uint64_t rate_limited = 0;
};

/// Spawn with `spawn<caf::detached>(task_consumer, options, workers,
/// held)`. `workers` may hold invalid handles (slots a replacement will
/// fill); `held` (may be null) is the ledger of this slot's consumers: what
/// it holds when the consumer starts belonged to a predecessor that died,
/// and is given back first.
task_consumer_actor::behavior_type
task_consumer(task_consumer_actor::stateful_pointer<task_consumer_state> self,
              consumer_options opts, std::vector<task_worker_actor> workers,
              std::shared_ptr<held_deliveries> held);

} // namespace vigil
