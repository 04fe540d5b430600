#pragma once

// Where the metrics actor sends each interval's aggregates (Sentry's
// MetricsBackend): dummy, logging (debug log), statsd and dogstatsd (UDP
// datagrams), datadog (the HTTP series API) and prometheus (the page that
// GET /metrics serves). A backend is called by its actor only, on a
// detached thread: the datadog backend's POST may block (bounded).

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <caf/expected.hpp>

#include "config/metrics_options.hpp"
#include "messages/metrics_format.hpp"

namespace vigil {

class metrics_backend {
public:
  virtual ~metrics_backend();

  /// A description for logs, without secrets ("statsd 127.0.0.1:8125").
  virtual std::string describe() const = 0;

  /// Sends (or keeps) one interval's points; `now` in Unix seconds. Never
  /// throws; failures are counted in `figures`.
  virtual void emit(const std::vector<metric_point>& points, double now) = 0;

  /// The backend's own counts for the actor's status ("datagrams sent",
  /// "dropped", "posts failed", ...).
  virtual std::map<std::string, std::string> figures() const {
    return {};
  }
};

/// The backend `cfg.backend` names; fails when it cannot start (an
/// unresolvable statsd host), the error naming the key.
caf::expected<std::unique_ptr<metrics_backend>>
make_metrics_backend(const metrics_config& cfg);

/// The statsd (pystatsd's lines) or DogStatsD backend.
caf::expected<std::unique_ptr<metrics_backend>>
make_statsd_metrics_backend(const metrics_config& cfg, statsd_flavor flavor);

/// The Datadog HTTP series API backend.
std::unique_ptr<metrics_backend>
make_datadog_metrics_backend(const metrics_config& cfg);

/// The Prometheus backend: publishes its page for GET /metrics.
std::unique_ptr<metrics_backend>
make_prometheus_metrics_backend(const metrics_config& cfg);

} // namespace vigil
