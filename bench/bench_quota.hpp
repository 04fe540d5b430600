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
  size_t in_flight = 8192;
  /// Checks per client message (a std::vector<quota_check>); 1 sends one
  /// quota_check per message.
  size_t client_batch = 1024;
  /// Percent of checks sent to ten small key quotas (limit 100) that are
  /// soon exhausted, so that the local cache of exhausted quotas answers
  /// them (0 in exactness mode).
  size_t exhausted_share = 10;
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
/// actor (1000 key quotas with a high limit, so that those checks go to the
/// store, plus `exhausted_share` percent for exhausted quotas) sent by
/// `clients` threads, each keeping `in_flight` checks outstanding in
/// messages of `client_batch` checks; beside it, a baseline that sends one
/// EVALSHA per check. Prints throughput, the latency of one client message
/// (p50, p99), the baseline and the ratio.
int bench_quota_command(const config& cfg, const bench_quota_options& opts);

} // namespace vigil
