#pragma once

#include <string>
#include <vector>

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

/// Runs a node until SIGINT or SIGTERM, then drains (stop fetching, finish
/// or give back in-flight tasks within worker.shutdown-timeout) and
/// returns the process exit code (0 after a clean drain).
int run_node(const config& cfg, const node_options& opts);

} // namespace vigil
