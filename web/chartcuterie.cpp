#include "web/chartcuterie.hpp"

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/chart_config_loader.hpp"
#include "actors/chart_renderer.hpp"
#include "adapters/http.hpp"
#include "messages/errors.hpp"

namespace vigil {

chartcuterie_service::~chartcuterie_service() {
  // nop
}

namespace {

/// Chartcuterie's body limit.
constexpr size_t max_render_body = 20 * 1024 * 1024;

/// How long a render may take before the request fails with 503.
constexpr std::chrono::seconds render_timeout{10};

caf::error bad_key(std::string_view key, std::string text) {
  return caf::make_error(errc::bad_config,
                         std::string{key} + ": " + std::move(text));
}

http_response plain(unsigned status, std::string text) {
  http_response r;
  r.status = status;
  r.content_type = "text/plain";
  r.body = std::move(text);
  return r;
}

class running_chartcuterie final : public chartcuterie_service {
public:
  explicit running_chartcuterie(caf::actor_system& sys) : sys_(sys) {
    // nop
  }

  ~running_chartcuterie() override {
    stop();
  }

  uint16_t port() const override {
    return server_ ? server_->port() : 0;
  }

  void stop() override {
    if (server_)
      server_->stop();
    for (auto& r : renderers_)
      caf::anon_send_exit(r, caf::exit_reason::user_shutdown);
    renderers_.clear();
    if (loader_)
      caf::anon_send_exit(loader_, caf::exit_reason::user_shutdown);
  }

  caf::error start(const config& cfg) {
    store_ = std::make_shared<chart_config_store>();
    auto source = cfg.get_string("chart-rendering.config");
    if (source.empty()) {
      // No configuration named: the built-in styles serve at once.
      store_->set(builtin_chart_config());
    } else {
      chart_config_loader_options lo;
      lo.source = source;
      lo.store = store_;
      lo.refresh = std::chrono::milliseconds{static_cast<int64_t>(
        cfg.get_double("chart-rendering.config-refresh") * 1000)};
      loader_ = sys_.spawn<caf::detached>(chart_config_loader, std::move(lo));
    }
    auto threads = cfg.get_int("chart-rendering.threads");
    auto n = threads > 0 ? static_cast<size_t>(threads)
                         : std::max(1u, std::thread::hardware_concurrency());
    for (size_t i = 0; i < n; ++i)
      renderers_.push_back(
        sys_.spawn<caf::detached>(chart_renderer, store_));
    max_queued_ = static_cast<size_t>(
      std::max<int64_t>(1, cfg.get_int("chart-rendering.queue-size")));

    auto bind = parse_bind_address(cfg.get_string("chart-rendering.bind"));
    if (!bind)
      return bad_key("chart-rendering.bind", error_text(bind.error()));
    http_server_options hopts;
    hopts.host = bind->first;
    hopts.port = bind->second;
    hopts.threads = 2;
    hopts.max_body_bytes = max_render_body;
    hopts.handler_timeout = render_timeout + std::chrono::seconds{5};
    auto server = http_server::start(
      hopts, [this](http_request&& req, http_responder respond) {
        route(std::move(req), std::move(respond));
      });
    if (!server)
      return bad_key("chart-rendering.bind", error_text(server.error()));
    server_ = std::move(*server);
    spdlog::info("chartcuterie: listening on http://{}:{} ({} renderers); "
                 "styles from {}",
                 hopts.host, server_->port(), n,
                 source.empty() ? std::string{"the built-in configuration"}
                                : source);
    return {};
  }

private:
  void route(http_request&& req, http_responder respond) {
    auto path = req.path();
    if (path == "/api/chartcuterie/healthcheck/live") {
      respond(plain(200, "OK"));
      return;
    }
    if (path == "/api/chartcuterie/healthcheck/ready") {
      respond(store_->get() ? plain(200, "OK")
                            : plain(503, "NOT CONFIGURED"));
      return;
    }
    if (path == "/render") {
      if (req.method() != "POST") {
        respond(json_error(405, "use POST to render a chart"));
        return;
      }
      render(std::move(req.body()), std::move(respond));
      return;
    }
    respond(json_error(404, "no route for " + std::string{req.method()}
                              + " " + std::string{path.substr(0, 200)}));
  }

  void render(std::string body, http_responder respond) {
    if (!store_->get()) {
      auto resp = json_error(503, "no chart configuration is loaded yet");
      resp.headers.emplace_back("Retry-After", "5");
      respond(std::move(resp));
      return;
    }
    // The bounded queue: renders waiting or running, over all renderers.
    if (queued_.fetch_add(1) >= max_queued_) {
      queued_.fetch_sub(1);
      auto resp = json_error(503, "the renderers are busy");
      resp.headers.emplace_back("Retry-After", "1");
      respond(std::move(resp));
      return;
    }
    auto idx = next_.fetch_add(1) % renderers_.size();
    // Asked from a short-lived actor, so that the HTTP thread never waits.
    sys_.spawn(
      [this, body = std::move(body), respond = std::move(respond)](
        caf::event_based_actor* self, chart_renderer_actor renderer) mutable {
        self->request(renderer, render_timeout, render_atom_v, std::move(body))
          .then(
            [this, respond](chart_reply& r) {
              queued_.fetch_sub(1);
              http_response resp;
              resp.status = r.status;
              resp.content_type = r.content_type;
              resp.body = std::move(r.body);
              if (!r.config_version.empty())
                resp.headers.emplace_back("X-Config-Version",
                                          r.config_version);
              if (r.status == 200)
                resp.headers.emplace_back(
                  "Content-Disposition", "attachment; filename=\"chart.png\"");
              if (r.status == 503)
                resp.headers.emplace_back("Retry-After", "5");
              respond(std::move(resp));
            },
            [this, respond](caf::error& err) {
              queued_.fetch_sub(1);
              auto resp = json_error(503, "the renderer did not answer: "
                                            + error_text(err));
              resp.headers.emplace_back("Retry-After", "1");
              respond(std::move(resp));
            });
      },
      renderers_[idx]);
  }

  caf::actor_system& sys_;
  std::shared_ptr<chart_config_store> store_;
  chart_config_loader_actor loader_;
  std::vector<chart_renderer_actor> renderers_;
  size_t max_queued_ = 64;
  std::atomic<size_t> queued_{0};
  std::atomic<size_t> next_{0};
  std::unique_ptr<http_server> server_;
};

} // namespace

caf::expected<std::unique_ptr<chartcuterie_service>>
start_chartcuterie_service(caf::actor_system& sys, const config& cfg) {
  auto svc = std::make_unique<running_chartcuterie>(sys);
  if (auto err = svc->start(cfg))
    return err;
  return std::unique_ptr<chartcuterie_service>{std::move(svc)};
}

} // namespace vigil
