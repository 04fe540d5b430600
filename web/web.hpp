#pragma once

// vigil's web interface (`web.bind`, default 127.0.0.1:9001): the Sentry
// ingest endpoints, the read API and the health check, with the actors
// behind them (quotas, rate limiter, ingest pipeline).

#include <memory>
#include <optional>

#include <caf/actor_system.hpp>
#include <caf/expected.hpp>

#include "actors/actor_directory.hpp"
#include "actors/buffer.hpp"
#include "actors/inspector.hpp"
#include "actors/tsdb.hpp"
#include "config/config.hpp"

namespace vigil {

/// The running web interface; `stop` (or destruction) closes it.
class web_service {
public:
  virtual ~web_service();

  /// The port it listens on.
  virtual uint16_t port() const = 0;

  /// Stops accepting and answering, then stops its actors.
  virtual void stop() = 0;
};

/// The node's service actors the web interface hands to ingestion and the
/// read API (none: the web interface runs without them).
struct web_services {
  /// The write buffer: ingestion's group counters, the read API's pending
  /// counts.
  std::optional<buffer_actor> buffer;
  /// The time-series store: ingestion's counts, the stats endpoints.
  std::optional<tsdb_actor> tsdb;
  /// Where the web interface lists its long-lived actors (quotas, ingest,
  /// rate limiter) for the inspector; none: they are not listed.
  actor_directory_ptr directory;
  /// This node's inspector (the console's snapshots); none: no console data.
  std::optional<inspector_actor> inspector;
};

/// Starts the web interface and its actors from the configuration: bind
/// address, limits, organizations/projects/keys, quotas, db.url,
/// broker.url for the post_process tasks, api.token. Fails with the key
/// that is wrong, or the address that cannot be bound.
caf::expected<std::unique_ptr<web_service>>
start_web_service(caf::actor_system& sys, const config& cfg,
                  web_services services = {});

} // namespace vigil
