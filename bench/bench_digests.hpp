#pragma once

#include <cstddef>
#include <string>

#include "config/config.hpp"

namespace vigil {

/// Options of `vigil bench digests`.
struct bench_digests_options {
  /// "memory" or "redis" ("" = digests.backend).
  std::string backend;
  /// Redis URL ("" = digests.options.cluster in redis.clusters).
  std::string redis_url;
  /// Records added in batches, records per add_many call, client threads
  /// (each with its own backend, so its own connection).
  size_t records = 400000;
  size_t batch = 1000;
  size_t clients = 2;
  /// Records the baseline adds with one script call (round trip) each.
  size_t baseline_records = 20000;
  /// Timelines (projects) the records spread over, and delivered.
  size_t projects = 10000;
  /// Bytes of each record's value (an encoded alert record).
  size_t value_size = 120;
  /// Records spread round-robin over the projects (each batch touches as
  /// many timelines as it has records: the worst case) instead of
  /// Zipf-distributed (s = 1) as alerts of real projects are.
  bool uniform = false;
  bool json = false;
};

/// `vigil bench digests`: adds `records` records over `projects` timelines
/// (Zipf-distributed, or round-robin with `uniform`)
/// with add_many (pipelined script calls) from `clients` threads, then
/// `baseline_records` with one add (one script call, one round trip) per
/// record, as Sentry's RedisBackend.add does; then delivers every
/// timeline (open and close), adds one record to each, and times a full
/// cycle: schedule, then open and close of each of the `projects` due
/// digests. Prints records/s for both ways and their ratio, and digests
/// delivered per second. Uses its own namespace ("bench") and deletes its
/// timelines at the end.
int bench_digests_command(const config& cfg, const bench_digests_options& opts);

} // namespace vigil
