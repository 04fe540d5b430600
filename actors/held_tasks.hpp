#pragma once

// The tasks a node's consumers hold and have not started: Celery's
// `reserved` (due, waiting for a worker or queued at one) and `scheduled`
// (held for their ETA, countdown or rate-limit token). No list is kept up
// to date on the hot path: each consumer registers itself here, and the
// remote control asks them for a snapshot only when `inspect reserved/
// scheduled` asks (see task_consumer's snapshot_atom); the one per-task
// cost is the consumer's note of what it gives a worker (its mailbox
// cannot be read). Also the one place that says
// how a task looks in Celery's Request.info() (`active` too). Locks.

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

#include "messages/task_message.hpp"
#include "messages/value.hpp"

namespace vigil {

/// One task as Celery's Request.info() shows it.
struct task_info {
  std::string id;
  std::string name;
  std::string argsrepr;
  std::string kwargsrepr;
  std::string queue;
  int32_t priority = 0;
  bool redelivered = false;
  /// Unix seconds it started; 0: not started (Celery's None).
  double time_start = 0;
  /// Unix microseconds of its ETA (or rate-limit release); 0: none.
  int64_t eta_us = 0;
};

/// What `info` shows of delivery `d`.
task_info task_info_of(const delivery& d);

/// Celery's Request.info(): id, name, args/kwargs (their reprs, Celery's
/// safe form), type, hostname, time_start, acknowledged, delivery_info,
/// worker_pid (this process's for a started task, else None).
value request_info(const task_info& t, const std::string& hostname);

/// One consumer's held tasks.
struct held_snapshot {
  /// Due and not started, oldest first.
  std::vector<task_info> reserved;
  /// Held for their time (eta_us set), soonest first.
  std::vector<task_info> scheduled;
};

class held_tasks {
public:
  /// `consumer` answers `snapshot_atom` by `put`ting its snapshot here.
  void attach(caf::actor consumer);

  /// The consumer `id` stopped.
  void detach(caf::actor_id id);

  /// Consumer `id`'s answer.
  void put(caf::actor_id id, held_snapshot snap);

  /// Asks every attached consumer (each within `timeout`) and merges their
  /// answers; a consumer that does not answer in time is left out (logged).
  held_snapshot gather(caf::actor_system& sys,
                       std::chrono::milliseconds timeout);

  /// Merges and forgets the answers `put` so far (gather's last step; tests
  /// call it directly).
  held_snapshot take();

private:
  std::mutex mtx_;
  std::vector<caf::actor> consumers_;
  held_snapshot answers_;
};

} // namespace vigil
