#pragma once

// A running process's inspection, for every `run` mode: its card, the
// inspector over its actor directory, the management endpoint
// (inspect.bind) and its cluster membership heartbeat in Redis.

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/expected.hpp>

#include "actors/actor_directory.hpp"
#include "actors/inspector.hpp"
#include "actors/node_identity.hpp"
#include "config/config.hpp"

namespace vigil {

/// What a process is, for its card.
struct inspection_options {
  /// The run mode: node, worker, web, cron, chartcuterie.
  std::string mode;
  /// The queues it consumes.
  std::vector<std::string> queues;
  /// Its actors (may be filled after start).
  actor_directory_ptr directory;
};

/// This process's inspection; `stop` (or destruction) removes its
/// membership entry and closes the endpoint.
class node_inspection {
public:
  virtual ~node_inspection();

  /// The inspector (for the web console).
  virtual inspector_actor inspector() const = 0;

  /// The card the snapshot and the heartbeat show.
  virtual std::shared_ptr<node_identity> identity() const = 0;

  virtual void stop() = 0;
};

/// Checks inspect.bind against inspect.token first (a bind beyond loopback
/// without a token fails, naming inspect.token), then spawns the inspector,
/// binds the endpoint (a busy port is logged and leaves the process without
/// one, so that it still runs) and starts the membership heartbeat when
/// redis.clusters has the cluster.
caf::expected<std::unique_ptr<node_inspection>>
start_node_inspection(caf::actor_system& sys, const config& cfg,
                      inspection_options opts);

/// The Redis URL nodes announce themselves in: the first host of
/// redis.clusters.<inspect.cluster, else default>; "" when there is no such
/// cluster (no membership), an error when inspect.cluster names a missing
/// one.
caf::expected<std::string> membership_redis_url(const config& cfg);

/// Where this process's service figures are read (actors/inspector_figures):
/// the broker and its queues; the buffer for node and web; the digests
/// (redis) and the cron schedule and lock for node and cron.
struct figures_options;
figures_options make_figures_options(const config& cfg,
                                     const inspection_options& opts);

/// The process's card before any server is bound: id (worker_hostname),
/// host, pid, version, mode, queues, start time.
node_card make_node_card(const config& cfg, const inspection_options& opts);

} // namespace vigil
