#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "config/config.hpp"

namespace vigil {

/// Options of `vigil bench quota`.
struct bench_quota_options {
  /// "memory" or "redis" ("" = quotas.backend).
  std::string backend;
  /// Redis URL ("" = quotas.options.cluster in redis.clusters).
  std::string url;
  /// Checks to decide through the actor.
  size_t count = 1000000;
  /// Client threads sending checks.
  size_t clients = 4;
  /// Checks each client keeps in flight.
  size_t in_flight = 2048;
  /// > 0: exactness mode: every check hits one key quota of this limit;
  /// prints the accepted count.
  int64_t limit = 0;
  /// Window in seconds for the quota.
  int64_t window = 3600;
  /// Checks the one-EVALSHA-per-check baseline decides (0 = none).
  size_t baseline_count = 20000;
  bool json = false;
};

/// `vigil bench quota`: decides `count` checks through a batching quota
/// actor (distinct key quotas with a high limit, so that every check goes to
/// the store) and, beside it, a baseline that sends one EVALSHA per check;
/// prints throughput, latency percentiles and the ratio.
int bench_quota_command(const config& cfg, const bench_quota_options& opts);

} // namespace vigil
