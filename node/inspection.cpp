#include "node/inspection.hpp"

#include <unistd.h>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/buffer_flush.hpp"
#include "actors/cluster_view.hpp"
#include "actors/inspector_figures.hpp"
#include "actors/quota.hpp"
#include "actors/rate_limiter.hpp"
#include "actors/node_membership.hpp"
#include "config/organizations.hpp"
#include "messages/clock.hpp"
#include "messages/errors.hpp"
#include "node/node.hpp"
#include "node/version.hpp"
#include "web/inspect_endpoint.hpp"

namespace vigil {

node_inspection::~node_inspection() {
  // nop
}

node_card make_node_card(const config& cfg, const inspection_options& opts) {
  node_card card;
  card.id = worker_hostname(cfg);
  char host[256] = {0};
  if (::gethostname(host, sizeof host - 1) != 0)
    std::snprintf(host, sizeof host, "localhost");
  card.host = host;
  card.pid = ::getpid();
  card.version = vigil_version;
  card.mode = opts.mode;
  card.queues = opts.queues;
  card.started = now_unix_seconds();
  return card;
}

caf::expected<std::string> membership_redis_url(const config& cfg) try {
  auto name = cfg.get_string("inspect.cluster");
  bool named = !name.empty();
  if (!named)
    name = "default";
  auto clusters = cfg.get_node("redis.clusters");
  if (!clusters.IsMap() || !clusters[name].IsMap()) {
    if (named)
      return caf::make_error(errc::bad_config,
                             "inspect.cluster: no cluster '" + name
                               + "' in redis.clusters");
    return std::string{};
  }
  auto hosts = clusters[name]["hosts"];
  if (!hosts.IsSequence() || hosts.size() == 0 || !hosts[0].IsScalar())
    return caf::make_error(errc::bad_config,
                           "redis.clusters." + name
                             + ".hosts: expected a list of redis:// URLs");
  return hosts[0].Scalar();
} catch (const std::exception& e) {
  return caf::make_error(errc::bad_config,
                         std::string{"redis.clusters: "} + e.what());
}

figures_options make_figures_options(const config& cfg,
                                     const inspection_options& opts) {
  figures_options o;
  auto& mode = opts.mode;
  if (mode == "chartcuterie")
    return o;
  o.broker_url = cfg.get_string("broker.url");
  o.queues = opts.queues;
  if (o.queues.empty())
    o.queues.push_back(cfg.get_string("tasks.default-queue"));
  if (mode == "node" || mode == "web")
    if (auto f = make_buffer_flush_options(cfg))
      o.buffer = f->store;
  if (auto catalog = load_quota_catalog(cfg))
    o.catalog = std::move(*catalog);
  if (mode == "node" || mode == "web")
    if (auto q = make_quota_actor_options(cfg))
      o.quotas = q->backend;
  // The limits vigil itself checks: the read API's per-token limit (web),
  // the digests' notification mails per project (node, cron).
  if (auto rl = make_rate_limiter_options(cfg); rl && rl->backend == "redis") {
    o.rate_limiter_url = rl->url;
    if (mode == "node" || mode == "web")
      if (auto c = api_user_check(cfg.get_int("auth.user-rate-limit"),
                                  "api-token"))
        o.rate_limits.push_back(*c);
    if ((mode == "node" || mode == "cron")
        && cfg.get_string("digests.backend") != "dummy"
        && cfg.get_int("digests.rate-limit") > 0)
      for (auto& p : o.catalog.projects)
        o.rate_limits.push_back({"digests:notifications",
                                 cfg.get_int("digests.rate-limit"),
                                 cfg.get_int("digests.rate-limit-window"),
                                 p.id});
  }
  if ((mode == "node" || mode == "cron")
      && cfg.get_string("digests.backend") == "redis")
    if (auto url = redis_cluster_url(cfg, "digests.options"))
      o.digests_url = *url;
  if (mode == "node" || mode == "cron")
    if (auto c = make_cron_options(cfg)) {
      o.cron_entries = c->entries;
      o.cron_lock_url = c->lock_url;
      o.cron_lock_key = c->lock_key;
    }
  return o;
}

namespace {

std::chrono::milliseconds seconds_ms(double s) {
  return std::chrono::milliseconds{static_cast<int64_t>(s * 1000)};
}

class running_inspection final : public node_inspection {
public:
  ~running_inspection() override {
    stop();
  }

  inspector_actor inspector() const override {
    return inspector_;
  }

  std::shared_ptr<node_identity> identity() const override {
    return identity_;
  }

  void stop() override {
    if (membership_) {
      // Out of the list at once rather than after the TTL (bounded).
      caf::scoped_actor self{sys_};
      self->request(*membership_, std::chrono::seconds{3}, drain_atom_v)
        .receive([](bool) {}, [](caf::error&) {});
      self->send_exit(*membership_, caf::exit_reason::user_shutdown);
      membership_.reset();
    }
    if (endpoint_)
      endpoint_->stop();
    endpoint_.reset();
    if (inspector_)
      caf::anon_send_exit(inspector_, caf::exit_reason::user_shutdown);
  }

  explicit running_inspection(caf::actor_system& sys) : sys_(sys) {
    // nop
  }

  caf::actor_system& sys_;
  std::shared_ptr<node_identity> identity_;
  inspector_actor inspector_;
  std::optional<node_membership_actor> membership_;
  std::unique_ptr<inspect_endpoint> endpoint_;
};

} // namespace

caf::expected<std::unique_ptr<node_inspection>>
start_node_inspection(caf::actor_system& sys, const config& cfg,
                      inspection_options opts) {
  auto ep = inspect_endpoint_config(cfg.get_string("inspect.bind"),
                                    cfg.get_string("inspect.token"));
  if (!ep)
    return ep.error();
  auto members = membership_redis_url(cfg);
  if (!members)
    return members.error();
  auto out = std::make_unique<running_inspection>(sys);
  out->identity_ = std::make_shared<node_identity>(make_node_card(cfg, opts));
  inspector_options io;
  io.directory = opts.directory;
  io.identity = out->identity_;
  io.timeout = seconds_ms(cfg.get_double("inspect.timeout"));
  auto fo = make_figures_options(cfg, opts);
  // Several round trips fit in the inspector's wait for them.
  fo.timeout = std::max(std::chrono::milliseconds{100}, io.timeout / 3);
  io.figures = make_service_figures(std::move(fo));
  // A peer's own gathering takes up to the timeout, its figures too.
  auto peer_timeout = io.timeout * 3 + std::chrono::seconds{2};
  if (!members->empty()) {
    io.cluster = make_cluster_source(*members, cfg.get_string("inspect.token"),
                                     peer_timeout);
    io.cluster_timeout = peer_timeout + std::chrono::seconds{3};
  }
  out->inspector_ = make_inspector(sys, std::move(io));
  if (*ep) {
    (*ep)->timeout = seconds_ms(cfg.get_double("inspect.timeout")) * 3
                     + std::chrono::seconds{5};
    auto started = start_inspect_endpoint(sys, **ep, out->inspector_);
    if (!started) {
      spdlog::error("{}; this process runs without a management endpoint "
                    "(set inspect.bind to a free port, or port 0 for any)",
                    error_text(started.error()));
    } else {
      out->endpoint_ = std::move(*started);
      out->identity_->set_inspect(out->endpoint_->address());
    }
  }
  if (!members->empty()) {
    membership_options mo;
    mo.redis_url = *members;
    mo.identity = out->identity_;
    out->membership_
      = sys.spawn<caf::detached>(node_membership, std::move(mo));
    if (opts.directory)
      opts.directory->add_typed("membership", *out->membership_);
    spdlog::info("membership: announcing {} in {} every 5 s",
                 out->identity_->card().id, mask_url(*members));
  }
  return std::unique_ptr<node_inspection>{std::move(out)};
}

} // namespace vigil
