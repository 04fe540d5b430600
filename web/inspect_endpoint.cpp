#include "web/inspect_endpoint.hpp"

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "adapters/http.hpp"
#include "messages/errors.hpp"
#include "messages/secret_compare.hpp"

namespace vigil {

inspect_endpoint::~inspect_endpoint() {
  // nop
}

bool is_loopback_host(const std::string& host) {
  return host == "localhost" || host == "::1" || host.starts_with("127.");
}

caf::expected<std::optional<inspect_endpoint_options>>
inspect_endpoint_config(const std::string& bind, const std::string& token) {
  if (bind.empty() || bind == "off")
    return std::optional<inspect_endpoint_options>{};
  auto parsed = parse_bind_address(bind);
  if (!parsed)
    return caf::make_error(errc::bad_config,
                           "inspect.bind: " + error_text(parsed.error()));
  inspect_endpoint_options o;
  o.host = parsed->first;
  o.port = parsed->second;
  o.token = token;
  if (token.empty() && !is_loopback_host(o.host))
    return caf::make_error(
      errc::bad_config,
      "inspect.token: required when inspect.bind is not a loopback address "
      "(inspect.bind is " + bind + "): anyone who reaches the port would see "
      "the node's actors and the cluster; set inspect.token (or "
      "VIGIL_INSPECT_TOKEN), or bind inspect.bind to 127.0.0.1");
  return std::optional<inspect_endpoint_options>{std::move(o)};
}

namespace {

class running_endpoint final : public inspect_endpoint {
public:
  running_endpoint(caf::actor_system& sys, inspect_endpoint_options opts,
                   inspector_actor inspector)
    : sys_(sys), opts_(std::move(opts)), inspector_(std::move(inspector)) {
    // nop
  }

  ~running_endpoint() override {
    stop();
  }

  std::string address() const override {
    auto host = opts_.host.find(':') != std::string::npos
                  ? "[" + opts_.host + "]"
                  : opts_.host;
    return host + ":" + std::to_string(server_ ? server_->port() : 0);
  }

  void stop() override {
    if (server_)
      server_->stop();
  }

  caf::error start() {
    http_server_options hopts;
    hopts.host = opts_.host;
    hopts.port = opts_.port;
    hopts.threads = 1;
    hopts.max_body_bytes = 64 * 1024;
    hopts.max_connections = 64;
    hopts.handler_timeout = opts_.timeout + std::chrono::seconds{2};
    auto server = http_server::start(
      hopts, [this](http_request&& req, http_responder respond) {
        route(std::move(req), std::move(respond));
      });
    if (!server)
      return caf::make_error(errc::bad_config,
                             "inspect.bind: " + error_text(server.error()));
    server_ = std::move(*server);
    return {};
  }

private:
  bool authorized(const http_request& req) const {
    if (opts_.token.empty())
      return true;
    auto authz = req.header("Authorization");
    if (authz.size() < 7
        || (authz.substr(0, 7) != "Bearer " && authz.substr(0, 7) != "bearer "))
      return false;
    return secrets_equal(authz.substr(7), opts_.token);
  }

  void route(http_request&& req, http_responder respond) {
    auto path = req.path();
    bool cluster = path == "/cluster" || path == "/cluster/";
    if (!cluster && path != "/snapshot" && path != "/snapshot/") {
      respond(json_error(404, "no route for " + std::string{req.method()} + " "
                                + std::string{path.substr(0, 200)}
                                + ": use GET /snapshot or GET /cluster"));
      return;
    }
    if (!authorized(req)) {
      auto resp = json_error(
        401, req.header("Authorization").empty()
               ? "missing bearer token: send Authorization: Bearer "
                 "<inspect.token>"
               : "wrong inspect.token");
      resp.headers.emplace_back("WWW-Authenticate", "Bearer");
      respond(std::move(resp));
      return;
    }
    if (req.method() != "GET" && req.method() != "HEAD") {
      respond(json_error(405, "use GET"));
      return;
    }
    // Asked from a short-lived actor, so that the server thread never
    // waits.
    sys_.spawn([timeout = opts_.timeout, inspector = inspector_, cluster,
                respond = std::move(respond)](caf::event_based_actor* self) {
      auto ok = [respond](std::string& body) {
        http_response resp;
        resp.body = std::move(body);
        resp.headers.emplace_back("Cache-Control", "no-store");
        respond(std::move(resp));
      };
      auto fail = [respond](caf::error& err) {
        respond(json_error(503, "the inspector did not answer: "
                                  + error_text(err)));
      };
      if (cluster)
        self->request(inspector, timeout, snapshot_atom_v, cluster_atom_v)
          .then(ok, fail);
      else
        self->request(inspector, timeout, snapshot_atom_v).then(ok, fail);
    });
  }

  caf::actor_system& sys_;
  inspect_endpoint_options opts_;
  inspector_actor inspector_;
  std::unique_ptr<http_server> server_;
};

} // namespace

caf::expected<std::unique_ptr<inspect_endpoint>>
start_inspect_endpoint(caf::actor_system& sys,
                       const inspect_endpoint_options& opts,
                       inspector_actor inspector) {
  auto ep = std::make_unique<running_endpoint>(sys, opts, std::move(inspector));
  if (auto err = ep->start())
    return err;
  spdlog::info("inspect: management endpoint on http://{}/snapshot{}",
               ep->address(), opts.token.empty() ? "" : " (bearer token)");
  return std::unique_ptr<inspect_endpoint>{std::move(ep)};
}

} // namespace vigil
