#pragma once

// vigil's web interface (`web.bind`, default 127.0.0.1:9001): the Sentry
// ingest endpoints, the read API and the health check, with the actors
// behind them (quotas, rate limiter, ingest pipeline).

#include <memory>
#include <optional>

#include <caf/actor_system.hpp>
#include <caf/expected.hpp>

#include "actors/buffer.hpp"
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

/// Starts the web interface and its actors from the configuration: bind
/// address, limits, organizations/projects/keys, quotas, db.url,
/// broker.url for the post_process tasks, api.token. Fails with the key
/// that is wrong, or the address that cannot be bound. Ingestion sends its
/// counters to `buffer` when there is one.
caf::expected<std::unique_ptr<web_service>>
start_web_service(caf::actor_system& sys, const config& cfg,
                  std::optional<buffer_actor> buffer = std::nullopt);

} // namespace vigil
