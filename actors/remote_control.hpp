#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/consumed_queues.hpp"
#include "actors/revoked_set.hpp"
#include "actors/running_tasks.hpp"
#include "actors/task_event_queue.hpp"
#include "actors/task_rate_limits.hpp"
#include "actors/task_time_limits.hpp"
#include "actors/pidbox_transport.hpp"
#include "messages/pidbox_messages.hpp"
#include "messages/type_ids.hpp"

namespace vigil {

/// What a node's remote-control actor answers for and where it listens.
struct remote_control_options {
  /// This node's worker name, as `celery inspect` prints it.
  std::string hostname;
  /// The broker (broker.url): redis:// or amqp://.
  std::string broker_url;
  /// Registered task names (for `registered`).
  std::vector<std::string> tasks;
  /// Consumed queues (for `active_queues`).
  std::vector<std::string> queues;
  size_t concurrency = 1;
  size_t prefetch = 0;
  /// Bound on every blocking broker call.
  std::chrono::milliseconds io_timeout{5000};
  /// How long one poll waits for a pidbox message before yielding.
  std::chrono::milliseconds wait{200};
  /// Publish Celery's worker events (worker-online, worker-heartbeat every
  /// `heartbeat`, worker-offline) on the `celeryev` fanout.
  bool send_events = false;
  std::chrono::milliseconds heartbeat{2000};
  /// The node's revoked ids, fed by `revoke` (shared with its consumers).
  std::shared_ptr<revoked_set> revoked;
  /// The node's per-task time limits, set by `time_limit` (shared with its
  /// workers), and its timeout counters (in `stats`).
  std::shared_ptr<task_time_limits> time_limits;
  /// The node's per-task rate limits, set by `rate_limit` (shared with its
  /// consumers).
  std::shared_ptr<task_rate_limits> rate_limits;
  /// The queues its consumers take from, changed by `add_consumer` /
  /// `cancel_consumer` (null: `queues` for good).
  std::shared_ptr<consumed_queues> consumed;
  /// Celery's task events from the node's consumers and workers, published
  /// here in batches (switched by `enable_events` / `disable_events`).
  std::shared_ptr<task_event_queue> events;
  /// The tasks running now: `active`, and `revoke` with terminate=True;
  /// its `held` answers `reserved` and `scheduled`.
  std::shared_ptr<running_tasks> running;
};

/// Celery's remote control (kombu's pidbox) for one vigil worker node: it
/// listens on the `celery.pidbox` fanout (on Redis kombu's
/// `/{db}.celery.pidbox` channel, on RabbitMQ the exchange and the node's
/// `<hostname>.celery.pidbox` queue; see pidbox_transport.hpp), answers the
/// requests addressed to its hostname, and routes each reply through the
/// `reply.celery.pidbox` direct exchange to the client, as a Celery worker
/// does. A malformed request is logged and dropped; an unknown command gets
/// kombu's error reply. Runs detached: its broker calls block (bounded).
using remote_control_actor = caf::typed_actor<
  /// Self-sent: read and answer what arrived, then poll again.
  caf::reacts_to<poll_atom>>;

/// State of the remote-control actor.
struct remote_control_state {
  static inline const char* name = "tasks.remote_control";
  remote_control_options opts;
  /// The broker side; null when broker_url has no pidbox (logged once).
  std::unique_ptr<pidbox_transport> transport;
  bool connected = false;
  /// Lamport clock, as kombu keeps it (adjusted by each request's clock).
  int64_t clock = 0;
  std::chrono::steady_clock::time_point started;
  uint64_t answered = 0;
  bool online_sent = false;
  std::chrono::steady_clock::time_point next_heartbeat;
  /// Task events published, and tasks seen ending in them (heartbeats'
  /// `processed`).
  uint64_t events_sent = 0;
  uint64_t processed = 0;
  /// To ask the node's consumers what they hold (null in tests: what was
  /// `put` into running->held is answered).
  caf::actor_system* system = nullptr;
};

/// Spawn with `spawn<caf::detached>(remote_control, options)`.
remote_control_actor::behavior_type
remote_control(remote_control_actor::stateful_pointer<remote_control_state> self,
               remote_control_options opts);

/// The reply to `req` ({"ok": "pong"} for ping, kombu's {"error": ...} for
/// an unknown command), or none for a command that answers nothing.
/// `shutdown` is reported through `*shutdown_requested`.
std::optional<value> answer_pidbox(remote_control_state& st,
                                   const pidbox_request& req,
                                   bool* shutdown_requested);

} // namespace vigil
