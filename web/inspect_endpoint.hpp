#pragma once

// The management endpoint (`inspect.bind`, default 127.0.0.1:9002): this
// node's inspection snapshot and the cluster's, as JSON, behind
// `inspect.token`. Its own server and port, apart from the web interface,
// so that every run mode (worker, cron, chartcuterie) has one.

#include <memory>
#include <optional>
#include <string>

#include <caf/actor_system.hpp>
#include <caf/expected.hpp>

#include "actors/inspector.hpp"

namespace vigil {

/// Where and how the endpoint listens.
struct inspect_endpoint_options {
  std::string host = "127.0.0.1";
  /// 0: any free port (`inspect_endpoint::address` tells which).
  uint16_t port = 9002;
  /// The bearer token every request must carry; empty: none asked (only
  /// allowed on loopback, see check_inspect_bind).
  std::string token;
  /// How long the inspector has to answer a request.
  std::chrono::milliseconds timeout{10000};
};

/// The parsed `inspect.bind` (none: "off" or empty), checked against
/// `inspect.token`: a bind beyond loopback without a token fails with a
/// text that names inspect.token.
caf::expected<std::optional<inspect_endpoint_options>>
inspect_endpoint_config(const std::string& bind, const std::string& token);

/// The running endpoint; stops when destroyed.
class inspect_endpoint {
public:
  virtual ~inspect_endpoint();

  /// "host:port" as bound.
  virtual std::string address() const = 0;

  virtual void stop() = 0;
};

/// Serves `GET /snapshot` and `GET /cluster` from `inspector`; 401 with a
/// JSON detail without the right bearer token (compared in constant time),
/// 404 for any other path. Fails with a text naming inspect.bind when the
/// address cannot be bound.
caf::expected<std::unique_ptr<inspect_endpoint>>
start_inspect_endpoint(caf::actor_system& sys,
                       const inspect_endpoint_options& opts,
                       inspector_actor inspector);

/// Whether `host` is a loopback address (127.0.0.0/8, ::1, localhost).
bool is_loopback_host(const std::string& host);

} // namespace vigil
