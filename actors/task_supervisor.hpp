#pragma once

#include <chrono>
#include <memory>
#include <vector>

#include <caf/actor.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/held_deliveries.hpp"
#include "actors/status.hpp"
#include "actors/task_consumer.hpp"
#include "actors/task_worker.hpp"
#include "messages/type_ids.hpp"
#include "tasks/task_registry.hpp"

namespace vigil {

/// Supervises the consumers and their workers one for one (each consumer
/// has its own broker connection and its share of the worker threads, so
/// that broker round trips overlap). When one of them dies abnormally, only
/// that one is spawned again, after its own exponential backoff (100 ms
/// doubling up to 30 s; back to 100 ms once it ran a minute), and wired in
/// again: a new worker is put into its consumer's slot, a new consumer gets
/// the workers of the one it replaces.
///
/// Nothing a dead child held waits for the visibility timeout: a consumer
/// gives back at once what its dead worker held, and a new consumer first
/// gives back what its predecessor held (kept for it in a
/// `held_deliveries` ledger), both through broker::restore_unacked, which
/// counts a failed delivery for each message. A message that keeps killing
/// its worker is dead-lettered after `consumer_options::max_deliveries`
/// (see task_consumer_actor). An exit message (shutdown) stops every child.
using task_supervisor_actor = caf::typed_actor<
  /// Self-sent: spawn child `n` (see get_atom) again after its backoff.
  caf::reacts_to<restart_atom, uint64_t>,
  /// Drains the consumers (see task_consumer_actor); answers true when all
  /// completed.
  caf::replies_to<drain_atom>::with<bool>,
  /// Answers the status of the supervisor and of every live child (each
  /// with its own restart count).
  caf::replies_to<status_atom>::with<std::vector<actor_status>>,
  /// Answers the children in a fixed order: per consumer, the consumer and
  /// then its workers; an invalid handle for one waiting for its restart.
  caf::replies_to<caf::get_atom>::with<std::vector<caf::actor>>>;

/// One child of the task supervisor, restarted on its own.
struct task_child {
  /// A consumer, or one of the workers of consumer `group`.
  bool consumer = false;
  size_t group = 0;
  /// A worker's slot at its consumer.
  size_t slot = 0;
  /// Invalid while the child waits for its restart.
  caf::actor handle;
  std::chrono::milliseconds backoff{0};
  std::chrono::steady_clock::time_point started;
  uint64_t restarts = 0;
};

/// State of a task supervisor.
struct task_supervisor_state {
  static inline const char* name = "tasks.supervisor";
  /// What each consumer is spawned with (prefetch shared out).
  consumer_options opts;
  std::string result_serializer;
  size_t concurrency = 1;
  std::shared_ptr<const task_registry> registry;
  /// Per consumer: the consumer, then its workers.
  std::vector<task_child> children;
  /// Per consumer: what it holds, for its successor should it die.
  std::vector<std::shared_ptr<held_deliveries>> held;
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
