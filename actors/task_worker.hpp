#pragma once

#include <memory>
#include <vector>

#include <caf/typed_actor.hpp>
#include <caf/replies_to.hpp>

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

/// State of a task worker.
struct task_worker_state {
  static inline const char* name = "tasks.worker";
  std::shared_ptr<const task_registry> registry;
  /// "" (store no results), "auto", "msgpack" or "json".
  std::string result_serializer;
  uint64_t processed = 0;
  uint64_t dead_lettered = 0;
  uint64_t retried = 0;
};

/// Spawn with `spawn<caf::detached>(task_worker, registry, serializer)`.
task_worker_actor::behavior_type
task_worker(task_worker_actor::stateful_pointer<task_worker_state> self,
            std::shared_ptr<const task_registry> registry,
            std::string result_serializer);

} // namespace vigil
