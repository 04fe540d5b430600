#pragma once

// vigil's chart renderer with Chartcuterie's HTTP API
// (`chart-rendering.bind`, default 127.0.0.1:7901): POST /render, and the
// live and ready health checks. Its own server and port, as Chartcuterie
// is its own service; `run chartcuterie` runs it alone, `run node` with
// chart-rendering.enabled runs it beside the web interface.

#include <memory>

#include <caf/actor_system.hpp>
#include <caf/expected.hpp>

#include "config/config.hpp"

namespace vigil {

/// The running chart service; `stop` (or destruction) closes it.
class chartcuterie_service {
public:
  virtual ~chartcuterie_service();

  /// The port it listens on.
  virtual uint16_t port() const = 0;

  /// Stops answering, then stops the renderers and the loader.
  virtual void stop() = 0;
};

/// Starts the loader (chart-rendering.config, or the built-in styles when
/// unset), the renderer pool (chart-rendering.threads, .queue-size) and
/// the HTTP server (chart-rendering.bind). Fails with the key that is
/// wrong, or the address that cannot be bound.
caf::expected<std::unique_ptr<chartcuterie_service>>
start_chartcuterie_service(caf::actor_system& sys, const config& cfg);

} // namespace vigil
