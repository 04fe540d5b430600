#pragma once

// `vigil buffer ...`: the operator's handles on the write buffer's store
// (buffer.backend: redis) — apply what is pending to SQL now, show what is
// pending, and add increments as ingestion would.

#include <cstddef>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace vigil {

/// Options of `vigil buffer flush`.
struct buffer_flush_command_options {
  /// Rows per SQL transaction.
  size_t batch_size = 500;
  /// How long to wait for another process_pending to release the pending
  /// set's lock.
  double lock_wait = 10;
  bool json = false;
};

/// `vigil buffer flush`: applies everything pending in the configured
/// store to db.url now, as the cron's process_pending + process_incr do,
/// under the same locks; prints the rows and increments applied. Returns
/// 0, 1 when the store or the database fails, 2 for a configuration that
/// has no shared store.
int buffer_flush_command(const config& cfg,
                         const buffer_flush_command_options& opts);

/// `vigil buffer stats`: pending rows per partition and takes in flight,
/// as text or one JSON object.
int buffer_stats_command(const config& cfg, bool json);

/// Options of `vigil buffer incr`.
struct buffer_incr_command_options {
  std::string model = "sentry.group";
  /// "column=value" (an integer value is typed as one, else text).
  std::vector<std::string> filters;
  /// "column[=amount]" (amount 1 when left out).
  std::vector<std::string> columns;
  /// "column=value", "now" meaning the current time as a datetime.
  std::vector<std::string> extra;
  /// Times the increment is sent, in requests of `batch` increments from
  /// `clients` threads.
  size_t count = 1;
  size_t batch = 1000;
  size_t clients = 1;
  bool json = false;
};

/// `vigil buffer incr`: sends one increment `count` times through a buffer
/// actor to the configured store, as ingestion does (each request answered
/// once the store holds it), and prints how many were accepted and how
/// many store writes they took. For tests and for correcting a count by
/// hand. Returns 0, 1 when some were not accepted, 2 for bad input.
int buffer_incr_command(const config& cfg,
                        const buffer_incr_command_options& opts);

} // namespace vigil
