#pragma once

#include <string>
#include <vector>

#include "actors/cron_scheduler.hpp"
#include "actors/task_consumer.hpp"
#include "config/config.hpp"

namespace vigil {

/// What `vigil run node|worker` runs.
struct node_options {
  /// "node" (every service) or "worker" (task workers only).
  std::string mode = "node";
  /// Queues to consume; empty = tasks.queues, else tasks.default-queue.
  std::vector<std::string> queues;
  /// Worker threads; 0 = worker.concurrency, else the number of cores.
  size_t concurrency = 0;
};

/// Builds the consumer's options from the configuration.
consumer_options make_consumer_options(const config& cfg,
                                       const std::vector<std::string>& queues);

/// Resolves the worker count: an explicit value, else worker.concurrency,
/// else the number of cores.
size_t resolve_concurrency(const config& cfg, size_t requested);

/// The node's worker name for Celery's remote control: worker.hostname, or
/// "vigil@<host>.<pid>" (unique per process).
std::string worker_hostname(const config& cfg);

/// Builds the cron scheduler's options from the configuration: the entries
/// of cron.schedule, broker.url, tasks.default-queue, cron.lock-ttl, and the
/// lock store cron.lock-url, else broker.url when it is redis://, else none
/// (the node is then the only scheduler).
caf::expected<cron_scheduler_options> make_cron_options(const config& cfg);

/// `vigil run cron`: runs the cron scheduler until SIGINT or SIGTERM, then
/// releases its lock and returns 0. With `dry_run`, prints each entry with
/// its schedule and next `count` fire times instead and returns 0, touching
/// no server. Returns 2 for a schedule that cannot run (no entries, or a
/// memory:// broker, which no other process can read).
int run_cron(const config& cfg, bool dry_run, size_t count = 5);

/// Runs a node until SIGINT or SIGTERM, then drains (stop fetching, finish
/// or give back in-flight tasks within worker.shutdown-timeout) and
/// returns the process exit code (0 after a clean drain).
///
/// A node (mode "node", not "worker") also runs the cron scheduler when
/// cron.schedule has entries, and releases its lock first when stopping.
int run_node(const config& cfg, const node_options& opts);

} // namespace vigil
