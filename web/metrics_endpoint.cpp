#include "web/metrics_endpoint.hpp"

#include "actors/metrics.hpp"
#include "messages/errors.hpp"

namespace vigil {

bool is_metrics_path(std::string_view path) {
  return path == "/metrics" || path == "/metrics/";
}

http_response metrics_response(const http_request& req) {
  if (req.method() != "GET" && req.method() != "HEAD") {
    auto resp = json_error(405, "use GET to read the metrics");
    resp.headers.emplace_back("Allow", "GET, HEAD");
    return resp;
  }
  auto page = metrics::prometheus_page();
  if (!page)
    return json_error(404, "metrics.backend is not prometheus: no /metrics "
                           "page");
  http_response resp;
  resp.content_type = "text/plain; version=0.0.4; charset=utf-8";
  if (req.method() == "GET")
    resp.body = std::move(*page);
  return resp;
}

caf::expected<std::unique_ptr<http_server>>
start_metrics_server(const std::string& bind) {
  auto addr = parse_bind_address(bind);
  if (!addr)
    return caf::make_error(errc::bad_config, "metrics.options: bind: "
                                               + error_text(addr.error()));
  http_server_options opts;
  opts.host = addr->first;
  opts.port = addr->second;
  opts.threads = 1;
  opts.max_body_bytes = 64 * 1024;
  opts.max_connections = 64;
  auto server = http_server::start(
    opts, [](http_request&& req, http_responder respond) {
      if (is_metrics_path(req.path()))
        respond(metrics_response(req));
      else
        respond(json_error(404, "only /metrics is served here"));
    });
  if (!server)
    return caf::make_error(errc::bad_config, "metrics.options: bind: "
                                               + error_text(server.error()));
  return server;
}

} // namespace vigil
