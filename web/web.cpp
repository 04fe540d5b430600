#include "web/web.hpp"

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <unordered_map>
#include <thread>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "actors/backends/broker.hpp"
#include "actors/backends/event_store.hpp"
#include "actors/backends/quota.hpp"
#include "actors/filestore.hpp"
#include "actors/ingest.hpp"
#include "actors/quota.hpp"
#include "actors/rate_limiter.hpp"
#include "actors/supervisor.hpp"
#include "adapters/http.hpp"
#include "config/organizations.hpp"
#include "config/text.hpp"
#include "messages/cors.hpp"
#include "messages/errors.hpp"
#include "messages/json_writer.hpp"
#include "messages/text_excerpt.hpp"
#include "web/console.hpp"
#include "web/ingest_endpoint.hpp"
#include "web/metrics_endpoint.hpp"
#include "web/read_api.hpp"

namespace vigil {

web_service::~web_service() {
  // nop
}

namespace {

caf::error bad_key(std::string_view key, std::string text) {
  return caf::make_error(errc::bad_config,
                         std::string{key} + ": " + std::move(text));
}

/// db.url, or the SQLite file in node.data-dir (created) when it is empty.
/// system.url-prefix, or the web interface's own address when unset (a
/// wildcard host replaced by loopback, the one address sure to reach it).
std::string url_prefix(const config& cfg) {
  auto prefix = cfg.get_string("system.url-prefix");
  if (!prefix.empty())
    return prefix;
  auto bind = cfg.get_string("web.bind");
  if (bind.starts_with("0.0.0.0:"))
    bind = "127.0.0.1" + bind.substr(7);
  return "http://" + bind;
}

caf::expected<std::string> database_url(const config& cfg) {
  auto url = cfg.get_string("db.url");
  if (url.empty()) {
    std::error_code ec;
    auto dir = cfg.get_string("node.data-dir");
    std::filesystem::create_directories(dir, ec);
    if (ec)
      return bad_key("node.data-dir",
                     "cannot create '" + dir + "': " + ec.message());
  }
  return effective_db_url(url, cfg.get_string("node.data-dir"));
}

/// Matches /api/{project_id}/store/ and /api/{project_id}/envelope/.
bool ingest_route(std::string_view path, uint64_t& project_id,
                  bool& envelope) {
  if (!path.starts_with("/api/"))
    return false;
  auto rest = path.substr(5);
  auto slash = rest.find('/');
  if (slash == std::string_view::npos || slash == 0)
    return false;
  int64_t id = 0;
  if (!parse_int(rest.substr(0, slash), id) || id <= 0)
    return false;
  auto tail = rest.substr(slash);
  if (tail == "/store/" || tail == "/store")
    envelope = false;
  else if (tail == "/envelope/" || tail == "/envelope")
    envelope = true;
  else
    return false;
  project_id = static_cast<uint64_t>(id);
  return true;
}

class running_web final : public web_service {
public:
  running_web(caf::actor_system& sys, web_services services)
    : sys_(sys), services_(std::move(services)) {
    // nop
  }

  ~running_web() override {
    stop();
  }

  uint16_t port() const override {
    return server_ ? server_->port() : 0;
  }

  void stop() override {
    if (server_)
      server_->stop();
    for (auto* hdl : {&pipeline_}) {
      if (*hdl)
        caf::anon_send_exit(*hdl, caf::exit_reason::user_shutdown);
    }
    if (quotas_)
      caf::anon_send_exit(quotas_, caf::exit_reason::user_shutdown);
    if (limiter_)
      caf::anon_send_exit(limiter_, caf::exit_reason::user_shutdown);
  }

  caf::error start(const config& cfg) {
    auto catalog = load_quota_catalog(cfg);
    if (!catalog)
      return catalog.error();
    catalog_ = std::move(*catalog);
    auto db_url = database_url(cfg);
    if (!db_url)
      return db_url.error();
    // Open once here, so that a bad db.url stops the start with its reason
    // (and the schema exists before the first request).
    auto sql_opts = make_sql_options(cfg.get_string("db.sqlite-synchronous"));
    if (auto probe = event_store::open(*db_url, sql_opts); !probe)
      return bad_key("db.url", "cannot open " + mask_url(*db_url) + ": "
                                 + error_text(probe.error()));
    auto qopts = make_quota_actor_options(cfg);
    if (!qopts)
      return qopts.error();
    quotas_ = spawn_supervised<quota_actor>(
      sys_, supervised("quotas", [qo = *qopts](caf::event_based_actor* p) {
        return caf::actor_cast<caf::actor>(
          p->spawn<caf::detached + caf::monitored>(quota_service, qo));
      }));

    auto queue = std::make_shared<ingest_queue>(
      static_cast<size_t>(cfg.get_int("ingest.queue-size")),
      static_cast<size_t>(cfg.get_int("ingest.queue-bytes")));
    ingest_options iopts;
    iopts.queue = queue;
    iopts.quotas = quotas_;
    iopts.open_store = [url = *db_url, sql_opts] {
      return event_store::open(url, sql_opts);
    };
    iopts.open_broker = [url = cfg.get_string("broker.url")] {
      return connect_broker(url, std::chrono::seconds{5});
    };
    iopts.task_queue = cfg.get_string("tasks.default-queue");
    iopts.batch_size = static_cast<size_t>(cfg.get_int("ingest.batch-size"));
    iopts.fail_open = qopts->fail_open;
    iopts.buffer = services_.buffer;
    iopts.buffer_group_counts = ingest_counts_through_buffer(cfg);
    iopts.tsdb = services_.tsdb;
    auto files = make_filestore_backend(cfg);
    if (!files)
      return files.error();
    iopts.filestore = std::move(*files);
    if (qopts->backend.backend == "memory")
      iopts.open_local_quotas = [bopts = qopts->backend] {
        return make_memory_quota_backend(bopts);
      };
    pipeline_ = spawn_supervised<ingest_actor>(
      sys_, supervised("ingest", [iopts](caf::event_based_actor* p) {
        return caf::actor_cast<caf::actor>(
          p->spawn<caf::detached + caf::monitored>(ingest_service, iopts));
      }));

    ingest_limits limits;
    limits.max_event_bytes
      = static_cast<size_t>(cfg.get_int("web.max-event-size"));
    limits.max_envelope_bytes
      = static_cast<size_t>(cfg.get_int("web.max-envelope-size"));
    limits.max_attachment_bytes
      = static_cast<size_t>(cfg.get_int("ingest.max-attachment-size"));
    ingest_ = std::make_unique<ingest_endpoint>(
      catalog_, queue, limits, cfg.get_bool("web.trust-forwarded-for"));
    for (auto& p : catalog_.projects)
      origins_.emplace(p.id, p.allowed_origins);
    queue_ = queue;

    read_api_options aopts;
    aopts.token = cfg.get_string("api.token");
    aopts.open_store = iopts.open_store;
    aopts.tsdb = services_.tsdb;
    // Its own backend: the read API's thread reads while the ingest actor
    // writes.
    auto read_files = make_filestore_backend(cfg);
    if (!read_files)
      return read_files.error();
    aopts.filestore = std::move(*read_files);
    aopts.url_prefix = url_prefix(cfg);
    aopts.mailgun.api_key = cfg.get_string("mail.mailgun-api-key");
    aopts.mailgun.secret_key = cfg.get_string("system.secret-key");
    if (services_.tsdb) {
      auto topts = make_tsdb_options(cfg);
      if (!topts)
        return topts.error();
      aopts.rollups = topts->rollups;
    }
    if (services_.buffer) {
      // The read API opens the store itself for `get` (the memory store
      // shares the node's rows by url), as Sentry reads pending counts.
      auto bopts = make_buffer_service_options(cfg);
      if (!bopts)
        return bopts.error();
      aopts.buffer_store = bopts->store;
    }
    aopts.ip_rate_limit = cfg.get_int("auth.ip-rate-limit");
    aopts.user_rate_limit = cfg.get_int("auth.user-rate-limit");
    if (aopts.ip_rate_limit > 0 || aopts.user_rate_limit > 0) {
      auto ropts = make_rate_limiter_options(cfg);
      if (!ropts)
        return ropts.error();
      limiter_ = spawn_supervised<rate_limiter_actor>(
        sys_,
        supervised("rate limiter", [ro = *ropts](caf::event_based_actor* p) {
          return caf::actor_cast<caf::actor>(
            p->spawn<caf::detached + caf::monitored>(rate_limiter_service,
                                                      ro));
        }));
      aopts.limiter = limiter_;
    }
    api_ = std::make_unique<read_api>(sys_, catalog_, std::move(aopts));
    console_options copts;
    copts.token = cfg.get_string("api.token");
    copts.inspector = services_.inspector;
    copts.broker_url = cfg.get_string("broker.url");
    console_ = std::make_unique<console_endpoint>(sys_, std::move(copts));
    if (services_.directory) {
      services_.directory->add_typed("web", quotas_);
      services_.directory->add_typed("web", pipeline_);
      if (limiter_)
        services_.directory->add_typed("web", limiter_);
    }

    auto bind = parse_bind_address(cfg.get_string("web.bind"));
    if (!bind)
      return bad_key("web.bind", error_text(bind.error()));
    http_server_options hopts;
    hopts.host = bind->first;
    hopts.port = bind->second;
    auto threads = cfg.get_int("web.threads");
    hopts.threads = threads > 0 ? static_cast<size_t>(threads)
                                : std::max(1u, std::thread::hardware_concurrency());
    hopts.max_body_bytes = static_cast<size_t>(cfg.get_int("web.max-body-size"));
    hopts.max_header_bytes
      = static_cast<size_t>(cfg.get_int("web.max-header-size"));
    hopts.read_timeout = std::chrono::milliseconds{
      static_cast<int64_t>(cfg.get_double("web.read-timeout") * 1000)};
    hopts.idle_timeout = std::chrono::milliseconds{
      static_cast<int64_t>(cfg.get_double("web.idle-timeout") * 1000)};
    hopts.max_connections
      = static_cast<size_t>(cfg.get_int("web.max-connections"));
    hopts.max_buffered_bytes
      = static_cast<size_t>(cfg.get_int("web.max-buffered-bytes"));
    hopts.handler_timeout = std::chrono::milliseconds{
      static_cast<int64_t>(cfg.get_double("web.handler-timeout") * 1000)};
    auto server = http_server::start(
      hopts, [this](http_request&& req, http_responder respond) {
        route(std::move(req), std::move(respond));
      });
    if (!server)
      return bad_key("web.bind", error_text(server.error()));
    server_ = std::move(*server);
    spdlog::info("web: listening on http://{}:{} ({} threads); events to {}, "
                 "quotas {}, {} projects",
                 hopts.host, server_->port(), hopts.threads, mask_url(*db_url),
                 qopts->backend.backend, catalog_.projects.size());
    return {};
  }

private:
  void route(http_request&& req, http_responder respond) {
    auto path = req.path();
    uint64_t project_id = 0;
    bool envelope = false;
    if (ingest_route(path, project_id, envelope)) {
      // Every answer of these endpoints, errors and 429s included, carries
      // the CORS headers: a browser SDK can read only what they expose.
      respond = with_cors(req.header("Origin"), std::move(respond));
      if (req.method() == "OPTIONS") {
        http_response preflight;
        preflight.content_type = "text/plain";
        respond(std::move(preflight));
        return;
      }
      if (req.method() != "POST") {
        respond(json_error(405, "use POST to send events"));
        return;
      }
      if (!origin_allowed(req, project_id, respond))
        return;
      ingest_->handle(std::move(req), project_id, envelope,
                      std::move(respond));
      return;
    }
    if (path.starts_with("/api/0/") || path.starts_with("/charts/")
        || path.starts_with("/api/hooks/")) {
      api_->handle(std::move(req), std::move(respond));
      return;
    }
    if (is_metrics_path(path))
      return respond(metrics_response(req));
    if (console_endpoint::handles(path)) {
      console_->handle(req, std::move(respond));
      return;
    }
    if (path == "/_health/" || path == "/_health") {
      health(std::move(respond));
      return;
    }
    respond(json_error(404, "no route for " + std::string{req.method()} + " "
                              + excerpt(path)));
  }

  /// Adds the Access-Control-* headers to whatever `respond` is given.
  static http_responder with_cors(std::string_view origin,
                                  http_responder respond) {
    return [headers = cors_headers(origin),
            respond = std::move(respond)](http_response resp) {
      resp.headers.insert(resp.headers.end(), headers.begin(), headers.end());
      respond(std::move(resp));
    };
  }

  /// Checks the request's origin (Origin, else Referer) against the
  /// project's allowed-domains; answers 403 and returns false when it is
  /// not allowed. Unknown projects pass: authentication refuses them.
  bool origin_allowed(const http_request& req, uint64_t project_id,
                      const http_responder& respond) {
    auto it = origins_.find(project_id);
    if (it == origins_.end() || it->second.allows_any())
      return true;
    auto origin = request_origin(req.header("Origin"), req.header("Referer"));
    if (it->second.allows(origin))
      return true;
    ++origin_rejected_;
    // Quoted only when printable ASCII: the detail echoes client input.
    bool plain = origin.size() <= 200
                 && std::all_of(origin.begin(), origin.end(), [](char c) {
                      return c >= 0x20 && c < 0x7f;
                    });
    respond(json_error(403, "origin " + (plain ? "'" + origin + "'"
                                               : std::string{"of the request"})
                              + " is not allowed for project "
                              + std::to_string(project_id)
                              + " (projects[].allowed-domains)"));
    return false;
  }

  /// Answers /_health/: 200 once the ingest pipeline answered a status
  /// request within `health_timeout`, else 503. Asked from a short-lived
  /// actor, so that the HTTP thread never waits.
  void health(http_responder respond) {
    auto f = ingest_->figures();
    nlohmann::json body{
      {"status", "ok"},
      {"queued", queue_->size()},
      {"queued_bytes", queue_->bytes()},
      {"ingest",
       {{"requests", f.requests},
        {"accepted", f.accepted},
        {"rate_limited", f.rate_limited},
        {"bad_requests", f.rejected_bad_request},
        {"auth_failures", f.rejected_auth},
        {"queue_full", f.queue_full},
        {"unknown_items_dropped", f.unknown_items_dropped},
        {"filtered", f.filtered},
        {"attachments_too_large", f.attachments_too_large},
        {"origin_rejected", origin_rejected_.load()}}}};
    // The pipeline goes in as a spawn argument, not a capture: CAF 0.17
    // binds a reference to a null argument tuple when a function actor is
    // spawned with none (UBSan reports it).
    sys_.spawn([body = std::move(body), respond = std::move(respond)](
                 caf::event_based_actor* self, ingest_actor pipeline) mutable {
      self->request(pipeline, health_timeout, status_atom_v)
        .then(
          [=](const actor_status& st) mutable {
            auto& p = body["pipeline"];
            p["processed"] = st.processed;
            p["errors"] = st.errors;
            p["restarts"] = st.restarts;
            for (auto& [key, val] : st.extra)
              p[key] = val;
            http_response resp;
            resp.body = dump_json(body);
            respond(std::move(resp));
          },
          [=](caf::error& err) mutable {
            body["status"] = "unavailable";
            body["detail"] = "the ingest pipeline did not answer within "
                             + std::to_string(health_timeout.count())
                             + " ms: " + error_text(err);
            http_response resp;
            resp.status = 503;
            resp.body = dump_json(body);
            resp.headers.emplace_back("Retry-After", "5");
            respond(std::move(resp));
          });
    }, pipeline_);
  }

  /// How long /_health/ waits for the ingest pipeline's status.
  static constexpr std::chrono::milliseconds health_timeout{2000};

  /// Supervision of a service actor (see actors/supervisor.hpp).
  static supervisor_options
  supervised(std::string name,
             std::function<caf::actor(caf::event_based_actor*)> spawn) {
    supervisor_options o;
    o.child_name = std::move(name);
    o.spawn_child = std::move(spawn);
    return o;
  }

  caf::actor_system& sys_;
  quota_catalog catalog_;
  quota_actor quotas_;
  web_services services_;
  rate_limiter_actor limiter_;
  ingest_actor pipeline_;
  std::shared_ptr<ingest_queue> queue_;
  std::unique_ptr<ingest_endpoint> ingest_;
  /// projects[].allowed-domains by project id.
  std::unordered_map<uint64_t, origin_policy> origins_;
  std::atomic<uint64_t> origin_rejected_{0};
  std::unique_ptr<read_api> api_;
  std::unique_ptr<console_endpoint> console_;
  std::unique_ptr<http_server> server_;
};

} // namespace

caf::expected<std::unique_ptr<web_service>>
start_web_service(caf::actor_system& sys, const config& cfg,
                  web_services services) {
  auto web = std::make_unique<running_web>(sys, std::move(services));
  if (auto err = web->start(cfg))
    return err;
  return std::unique_ptr<web_service>{std::move(web)};
}

} // namespace vigil
