#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/backends/broker.hpp"
#include "actors/status.hpp"
#include "adapters/redis.hpp"
#include "adapters/redis_lock.hpp"
#include "config/cron_schedule.hpp"
#include "messages/type_ids.hpp"

namespace vigil {

/// What a cron scheduler sends and how it coordinates with its peers.
struct cron_scheduler_options {
  std::vector<cron_entry> entries;
  /// Where tasks are published (broker.url).
  std::string broker_url = "memory://";
  /// Queue of entries without options.queue (tasks.default-queue).
  std::string default_queue = "celery";
  /// The Redis holding the lock and the fired ticks; "" = no lock: this
  /// node is the only scheduler.
  std::string lock_url;
  /// Lease of the lock; renewed every fifth of it, and standbys try to take
  /// it as often.
  std::chrono::milliseconds lock_ttl{5000};
  /// The lock's key (a string holding the holder's token).
  std::string lock_key = "vigil.cron.lock";
  /// The hash of entry name -> last fired tick (Unix milliseconds).
  std::string last_key = "vigil.cron.last";
  /// Bound on every blocking broker call.
  std::chrono::milliseconds broker_timeout{5000};
};

/// Sends each schedule entry's task when it is due. With a lock store, only
/// the holder of the Redis lock sends, and it claims every tick in Redis
/// (checking its token and the entry's last fired tick in one script) before
/// sending it, so a tick is sent at most once across the cluster, even
/// across a handover. Missed ticks collapse into one send (see
/// decide_fire). Runs detached: its Redis and broker calls block.
using cron_scheduler_actor = caf::typed_actor<
  /// Self-sent: renew or try the lock, send what is due, sleep until the
  /// next tick or lock step.
  caf::reacts_to<poll_atom>,
  /// Stops sending, tries once more to send what was claimed, releases the
  /// lock; answers true when the lock is released (or was never held).
  caf::replies_to<drain_atom>::with<bool>,
  /// Answers the scheduler's status: entries, sends per entry, lock held
  /// or standby, last error.
  caf::replies_to<status_atom>::with<actor_status>>;

/// One entry as the scheduler tracks it.
struct cron_entry_state {
  cron_entry entry;
  /// The tick fired last as far as this node knows, or, before any, the
  /// time this node started watching the entry.
  int64_t last_ms = 0;
  /// Whether `last_ms` is a fired tick (sent here or recorded in Redis)
  /// rather than the start time.
  bool fired_before = false;
  std::optional<int64_t> next_ms;
  /// Sends made by this node.
  uint64_t fired = 0;
  /// Ticks not sent because of the no-burst policy.
  uint64_t skipped = 0;
};

/// State of a cron scheduler.
struct cron_scheduler_state {
  static inline const char* name = "cron.scheduler";

  cron_scheduler_options opts;
  std::vector<cron_entry_state> entries;
  std::string origin;

  std::unique_ptr<broker> conn;
  std::chrono::steady_clock::time_point next_broker_connect;
  std::chrono::milliseconds broker_backoff{0};

  std::optional<redis_endpoint> lock_endpoint;
  std::optional<redis_connection> redis;
  std::unique_ptr<redis_lock> lock;
  std::chrono::steady_clock::time_point next_redis_connect;
  std::chrono::milliseconds redis_backoff{0};
  std::chrono::steady_clock::time_point next_lock_step;
  /// Until when the lease surely lasts (from the start of the last renew).
  std::chrono::steady_clock::time_point held_until;
  bool held = false;

  /// Claimed ticks whose tasks are not published yet (entry index, task).
  std::vector<std::pair<size_t, outgoing_task>> unsent;

  bool stopping = false;
  status_counters counters;
  uint64_t fired = 0;
  uint64_t lock_acquired = 0;
  uint64_t lock_lost = 0;
  uint64_t fired_elsewhere = 0;
};

/// Spawn with `spawn<caf::detached>(cron_scheduler, options)`.
cron_scheduler_actor::behavior_type
cron_scheduler(cron_scheduler_actor::stateful_pointer<cron_scheduler_state> self,
               cron_scheduler_options opts);

} // namespace vigil
