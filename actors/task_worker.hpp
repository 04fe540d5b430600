#pragma once

#include <memory>
#include <vector>

#include <caf/typed_actor.hpp>
#include <caf/replies_to.hpp>

#include "actors/running_tasks.hpp"
#include "actors/task_event_queue.hpp"
#include "actors/task_time_limits.hpp"
#include "messages/type_ids.hpp"
#include "tasks/task_registry.hpp"

namespace vigil {

/// A task worker: runs task functions on its own thread (spawned detached,
/// so a blocking task never stalls the scheduler).
using task_worker_actor = caf::typed_actor<
  /// Runs a batch of deliveries; answers one outcome per delivery, in order.
  caf::replies_to<run_atom, std::vector<delivery>>::with<
    std::vector<task_outcome>>,
  /// Answers the worker's status.
  caf::replies_to<status_atom>::with<actor_status>>;

/// What a node's workers share with its consumers and remote control (each
/// may be null: no such feature).
struct worker_shared {
  /// Per-task time limits (`time_limit`) and the node's timeout counters.
  std::shared_ptr<task_time_limits> time_limits;
  /// Celery's task events (task-started, -succeeded, -failed, -retried,
  /// -revoked for an expired one), published by the remote control.
  std::shared_ptr<task_event_queue> events;
  /// The tasks running now (inspect active, revoke terminate=True).
  std::shared_ptr<running_tasks> running;
};

/// State of a task worker.
struct task_worker_state {
  static inline const char* name = "tasks.worker";
  std::shared_ptr<const task_registry> registry;
  /// "" (store no results), "auto", "msgpack" or "json".
  std::string result_serializer;
  uint64_t processed = 0;
  uint64_t dead_lettered = 0;
  uint64_t retried = 0;
  worker_shared shared;
  /// Runs the tasks that have a hard time limit (created on first use).
  std::unique_ptr<bounded_task_thread> bounded;
  uint64_t soft_timeouts = 0;
  uint64_t hard_timeouts = 0;
};

/// Spawn with `spawn<caf::detached>(task_worker, registry, serializer,
/// shared)`. A task with a soft time limit sees it in its context; one with
/// a hard limit runs on a thread of its own, which the worker abandons at
/// the limit (FAILURE TimeLimitExceeded, dead-lettered) to carry on with a
/// new one.
task_worker_actor::behavior_type
task_worker(task_worker_actor::stateful_pointer<task_worker_state> self,
            std::shared_ptr<const task_registry> registry,
            std::string result_serializer, worker_shared shared);

} // namespace vigil
