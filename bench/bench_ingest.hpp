#pragma once

#include <cstddef>
#include <string>

#include "config/config.hpp"

namespace vigil {

/// Options of `vigil bench ingest`.
struct bench_ingest_options {
  /// Seconds of each measured wrk run.
  double duration = 10;
  /// Keep-alive connections wrk keeps open.
  size_t connections = 64;
  /// Measured rounds; each runs nginx, then the node.
  size_t rounds = 3;
  /// Event JSON to post ("" = a built-in ~2 KiB Python SDK exception).
  std::string event_path;
  /// The wrk script ("" = bench/ingest_post.lua beside the build or the
  /// working directory).
  std::string script;
  /// HTTP threads of the node and worker processes of nginx.
  size_t threads = 2;
  /// Keep the temporary directory (configs, logs, database).
  bool keep = false;
  bool json = false;
  /// How the measured node counts events: "default" (the configuration's
  /// defaults), "off" (issue counts in the ingest transaction, no TSDB),
  /// "memory" or "redis" (issue counts through the write buffer, and the
  /// TSDB, on that backend).
  std::string services = "default";
  /// Also runs a node with the counters "off" beside the measured one, in
  /// every round, and reports the measured node's rate as a share of it.
  bool against_off = false;
  /// The Redis of --services redis (an empty database).
  std::string redis_url;
  /// Metrics backends to compare, comma-separated (off, statsd, dogstatsd,
  /// prometheus, logging): one node each, the same services, taking turns
  /// in every round; the first is the measured node, and each is reported
  /// as a share of the "off" one. Empty: the nodes' metrics stay off.
  std::string metrics;
  /// The UDP port the statsd/dogstatsd nodes send to (the bench's sink).
  uint16_t metrics_port = 0;
};

/// `vigil bench ingest`: starts a node (`vigil run web`, a subprocess with
/// its own config: one project whose key has a generous rate limit, so
/// every event goes through the quota check, the SQLite nodestore in a
/// temporary directory, the memory:// broker) and nginx answering the same
/// POST with a static 200, then alternates wrk runs against both with the
/// same script (bench/ingest_post.lua: keep-alive, a new event_id in every
/// request). Prints the medians (events/s, p50, p99, CPU per event), the
/// ratio to nginx, and whether the node stored every event it answered
/// (after a final flush of the write buffer).
int bench_ingest_command(const config& cfg, const bench_ingest_options& opts);

} // namespace vigil
