#pragma once

#include <cstddef>
#include <string>

#include "config/config.hpp"

namespace vigil {

/// Options of `vigil bench buffer`.
struct bench_buffer_options {
  /// "memory" or "redis" ("" = buffer.backend).
  std::string backend;
  /// Redis URL ("" = buffer.options.cluster in redis.clusters).
  std::string url;
  /// Increments sent through the buffer actor.
  size_t count = 1000000;
  /// Client threads sending them, and increments per client request.
  size_t clients = 4;
  size_t client_batch = 1000;
  /// Distinct rows (groups) the increments spread over.
  size_t rows = 100;
  /// Clients sum their increments per row before sending (one
  /// buffer_batch per request) instead of one buffer_incr per increment.
  bool summed = false;
  /// Events the baseline counts with one SQL UPDATE each (0 = none).
  size_t baseline_count = 20000;
  bool json = false;
};

/// `vigil bench buffer`: sends `count` increments of `rows` groups'
/// times_seen through the buffer actor from `clients` threads (each waits
/// for its request's answer: the store holds the increments), then flushes
/// the store into a fresh SQLite database as process_incr does and checks
/// the sums. Beside it, a baseline counts `baseline_count` events with one
/// UPDATE each. Prints increments/s accepted, Redis commands per increment
/// (INFO commandstats), SQL statements per flush, the baseline's rate and
/// how many times fewer SQL writes the buffer made.
int bench_buffer_command(const config& cfg, const bench_buffer_options& opts);

} // namespace vigil
