#pragma once

// GET /metrics: the Prometheus text exposition of vigil's internal metrics
// (metrics.backend prometheus), on the web bind, or on metrics.options bind
// for a node without the web interface (`run worker`). No token: Prometheus
// scrapes without one, and both binds are loopback by default; see
// docs/METRICS.md.

#include <memory>
#include <string>

#include <caf/expected.hpp>

#include "adapters/http.hpp"

namespace vigil {

/// Whether `path` is the metrics page's.
bool is_metrics_path(std::string_view path);

/// Answers GET (or HEAD) /metrics: the page, or 404 with a JSON detail
/// when metrics.backend is not prometheus, 405 for other methods.
http_response metrics_response(const http_request& req);

/// Serves /metrics alone on `bind` ("host:port"); fails naming
/// metrics.options bind when the address is wrong or taken.
caf::expected<std::unique_ptr<http_server>>
start_metrics_server(const std::string& bind);

} // namespace vigil
