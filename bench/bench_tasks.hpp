#pragma once

#include <cstddef>
#include <string>

#include "config/config.hpp"

namespace vigil {

/// Options of `vigil bench tasks`.
struct bench_tasks_options {
  /// Broker to measure ("" = broker.url).
  std::string broker_url;
  size_t count = 100000;
  /// Worker threads.
  size_t concurrency = 2;
  /// Broker connections consuming in parallel.
  size_t consumers = 2;
  /// Messages per publish round trip.
  size_t publish_batch = 500;
  /// Deliveries a consumer holds at once.
  size_t prefetch = 4000;
  bool json = false;
  /// metrics.backend for the run ("" = the configuration's, "off" = none);
  /// metrics.options as configured.
  std::string metrics;
};

/// `vigil bench tasks`: publishes `count` no-op tasks from a producer thread
/// while a consumer and its workers run them, acknowledging each after it
/// ran, all in this process against the given broker. Prints throughput
/// (first publish to last acknowledgement) and latency percentiles (publish
/// to run) as text or one JSON object.
int bench_tasks_command(const config& cfg, const bench_tasks_options& opts);

} // namespace vigil
