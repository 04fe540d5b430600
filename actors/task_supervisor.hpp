#pragma once

#include <chrono>
#include <memory>
#include <vector>

#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/status.hpp"
#include "actors/task_consumer.hpp"
#include "actors/task_worker.hpp"
#include "messages/type_ids.hpp"
#include "tasks/task_registry.hpp"

namespace vigil {

/// Supervises the consumers and their workers as a group (each consumer has
/// its own broker connection and its share of the worker threads, so that
/// broker round trips overlap): if any of them dies
/// abnormally, the rest are stopped and the group is spawned again after an
/// exponential backoff (100 ms doubling up to 30 s; reset after a minute of
/// health). Messages the dead group held stay unacknowledged in the broker
/// and come back after the visibility timeout: nothing is lost.
using task_supervisor_actor = caf::typed_actor<
  /// Self-sent: spawn the group again after its backoff.
  caf::reacts_to<restart_atom>,
  /// Drains the consumer (see task_consumer_actor); answers when done.
  caf::replies_to<drain_atom>::with<bool>,
  /// Answers the status of the supervisor and of every child.
  caf::replies_to<status_atom>::with<std::vector<actor_status>>>;

/// State of a task supervisor.
struct task_supervisor_state {
  static inline const char* name = "tasks.supervisor";
  consumer_options opts;
  size_t concurrency = 1;
  std::shared_ptr<const task_registry> registry;
  size_t consumer_count = 1;
  std::vector<task_consumer_actor> consumers;
  std::vector<task_worker_actor> workers;
  std::chrono::milliseconds backoff{0};
  std::chrono::steady_clock::time_point started;
  bool stopping = false;
  status_counters counters;
};

/// Spawn with `sys.spawn(task_supervisor, options, consumers, concurrency,
/// registry)`; `consumers` is capped at `concurrency`.
task_supervisor_actor::behavior_type
task_supervisor(task_supervisor_actor::stateful_pointer<task_supervisor_state> self,
                consumer_options opts, size_t consumers, size_t concurrency,
                std::shared_ptr<const task_registry> registry);

} // namespace vigil
