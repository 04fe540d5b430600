#include "node/node.hpp"

#include <csignal>
#include <iostream>
#include <optional>
#include <thread>

#include <unistd.h>

#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/backends/alert_state.hpp"
#include "actors/digest_delivery.hpp"
#include "actors/backends/event_store.hpp"
#include "actors/actor_directory.hpp"
#include "actors/buffer.hpp"
#include "actors/buffer_flush.hpp"
#include "actors/tsdb.hpp"
#include "actors/task_supervisor.hpp"
#include "actors/remote_control.hpp"
#include "messages/clock.hpp"
#include "messages/crontab.hpp"
#include "messages/errors.hpp"
#include "config/organizations.hpp"
#include "node/actor_system.hpp"
#include "node/inspection.hpp"
#include "tasks/event_tasks.hpp"
#include "web/chartcuterie.hpp"
#include "web/web.hpp"

namespace vigil {

consumer_options make_consumer_options(const config& cfg,
                                       const std::vector<std::string>& queues) {
  consumer_options o;
  o.broker_url = cfg.get_string("broker.url");
  o.queues = queues;
  if (o.queues.empty())
    o.queues = cfg.get_string_list("tasks.queues");
  if (o.queues.empty()) {
    o.queues.push_back(cfg.get_string("tasks.default-queue"));
    // The write buffer's tasks go to Sentry's queues: a node that was not
    // told which queues to consume takes them too.
    for (const auto& q : buffer_task_queues())
      if (std::find(o.queues.begin(), o.queues.end(), q) == o.queues.end())
        o.queues.push_back(q);
    for (const auto& q : digest_task_queues())
      if (std::find(o.queues.begin(), o.queues.end(), q) == o.queues.end())
        o.queues.push_back(q);
  }
  o.prefetch = static_cast<size_t>(std::max<int64_t>(1, cfg.get_int("broker.prefetch")));
  o.fetch_batch = std::min<size_t>(o.prefetch, 500);
  // RabbitMQ enforces the prefetch itself (basic.qos): hand broker.prefetch
  // to the connection unless the URL sets its own ?prefetch=.
  if (o.broker_url.starts_with("amqp://")
      && o.broker_url.find("prefetch=") == std::string::npos)
    o.broker_url += (o.broker_url.find('?') == std::string::npos ? "?" : "&")
                    + std::string{"prefetch="}
                    + std::to_string(std::min<size_t>(o.prefetch, 65535));
  o.visibility_timeout = cfg.get_double("broker.visibility-timeout");
  o.restore_interval = cfg.get_double("broker.restore-interval");
  o.poll_interval = cfg.get_double("broker.poll-interval");
  o.result_backend_url = cfg.get_string("tasks.result-backend");
  o.result_expires = cfg.get_int("tasks.result-expires");
  o.result_serializer = cfg.get_string("tasks.result-serializer");
  o.default_queue = cfg.get_string("tasks.default-queue");
  o.shutdown_timeout = cfg.get_double("worker.shutdown-timeout");
  o.max_deliveries = static_cast<uint32_t>(
    std::max<int64_t>(0, cfg.get_int("tasks.max-deliveries")));
  return o;
}

std::string worker_hostname(const config& cfg) {
  auto name = cfg.get_string("worker.hostname");
  if (!name.empty())
    return name;
  // Unique per process, as Celery's -n %h with a suffix: two nodes on one
  // host must not answer as one.
  char host[256] = {0};
  if (::gethostname(host, sizeof host - 1) != 0)
    std::snprintf(host, sizeof host, "localhost");
  return "vigil@" + std::string{host} + "." + std::to_string(::getpid());
}

size_t resolve_concurrency(const config& cfg, size_t requested) {
  if (requested > 0)
    return requested;
  auto configured = cfg.get_int("worker.concurrency");
  if (configured > 0)
    return static_cast<size_t>(configured);
  return std::max(1u, std::thread::hardware_concurrency());
}

caf::expected<cron_scheduler_options> make_cron_options(const config& cfg) {
  auto entries = cron_schedule_from_config(cfg);
  if (!entries)
    return caf::make_error(errc::bad_config,
                           "cron.schedule: " + error_text(entries.error()));
  cron_scheduler_options o;
  o.entries = std::move(*entries);
  if (auto every = cfg.get_double("buffer.flush-interval");
      every > 0
      && std::none_of(o.entries.begin(), o.entries.end(),
                      [](const cron_entry& e) { return e.name == "flush-buffers"; }))
    o.entries.push_back(flush_buffers_entry(every));
  if (cfg.get_string("digests.backend") != "dummy"
      && std::none_of(o.entries.begin(), o.entries.end(),
                      [](const cron_entry& e) {
                        return e.name == "schedule-digests";
                      }))
    o.entries.push_back(schedule_digests_entry(
      cfg.get_double("digests.schedule-interval")));
  o.broker_url = cfg.get_string("broker.url");
  o.default_queue = cfg.get_string("tasks.default-queue");
  o.lock_url = cfg.get_string("cron.lock-url");
  if (o.lock_url.empty() && o.broker_url.starts_with("redis://"))
    o.lock_url = o.broker_url;
  o.lock_ttl = std::chrono::duration_cast<std::chrono::milliseconds>(
    std::chrono::duration<double>(cfg.get_double("cron.lock-ttl")));
  return o;
}

namespace {

// The digests' delivery options, or null (logged) when the configuration
// has none to give.
std::shared_ptr<const digest_delivery_options>
digest_options(const config& cfg) {
  if (cfg.get_string("digests.backend") == "dummy")
    return nullptr;
  auto o = make_digest_delivery_options(cfg);
  if (!o) {
    spdlog::error("digests disabled: {}", error_text(o.error()));
    return nullptr;
  }
  return std::make_shared<const digest_delivery_options>(std::move(*o));
}

// The alert rules' services: each project's rules, the state on the event
// store's database and the TSDB, and the digests store the records go to
// (logged only with digests.backend: dummy).
std::shared_ptr<const event_task_services>
event_services(const config& cfg,
               std::shared_ptr<const digest_delivery_options> digests) {
  auto out = std::make_shared<event_task_services>();
  auto catalog = load_quota_catalog(cfg);
  auto tsdb = make_tsdb_options(cfg);
  if (!catalog || !tsdb) {
    spdlog::error("alert rules disabled: {}",
                  error_text(!catalog ? catalog.error() : tsdb.error()));
    return out;
  }
  for (const auto& p : catalog->projects)
    out->rules[p.id] = p.alert_rules;
  alert_state_options o;
  o.db_url = effective_db_url(cfg.get_string("db.url"),
                              cfg.get_string("node.data-dir"));
  o.db_options = make_sql_options(cfg.get_string("db.sqlite-synchronous"));
  o.tsdb = std::move(*tsdb);
  out->state = make_alert_state(std::move(o));
  if (digests)
    out->sink = make_digest_alert_sink(std::move(digests));
  else
    out->sink = std::make_shared<logging_alert_sink>();
  return out;
}

} // namespace

std::shared_ptr<const task_registry> node_task_registry(const config& cfg) {
  auto reg = std::make_shared<task_registry>();
  register_builtin_tasks(*reg);
  auto digests = digest_options(cfg);
  register_event_tasks(*reg, event_services(cfg, digests));
  if (digests)
    register_digest_tasks(*reg, digests);
  if (auto opts = make_buffer_flush_options(cfg); !opts)
    spdlog::error("buffer tasks not registered: {}", error_text(opts.error()));
  else
    register_buffer_tasks(*reg, std::move(*opts));
  return reg;
}

namespace {

std::string describe_lock(const cron_scheduler_options& o) {
  if (o.lock_url.empty())
    return "none (this node is the only scheduler)";
  return mask_url(o.lock_url) + " key " + o.lock_key + ", ttl "
         + std::to_string(o.lock_ttl.count()) + " ms";
}

void log_cron_start(const cron_scheduler_options& o) {
  spdlog::info("cron scheduler starting: {} entr{}, broker {}, lock {}",
               o.entries.size(), o.entries.size() == 1 ? "y" : "ies",
               mask_url(o.broker_url), describe_lock(o));
  if (o.lock_url.empty() && !o.broker_url.starts_with("memory://"))
    spdlog::warn("cron: no lock store (cron.lock-url unset and broker.url is "
                 "not redis://): every process running the scheduler sends "
                 "every task; set cron.lock-url to run more than one");
}

int print_cron_schedule(const cron_scheduler_options& o, size_t count) {
  if (o.entries.empty()) {
    std::cout << "cron.schedule has no entries: nothing would be sent\n";
    return 0;
  }
  std::cout << o.entries.size() << " cron entr"
            << (o.entries.size() == 1 ? "y" : "ies") << ", times in UTC; lock "
            << describe_lock(o) << "\n";
  auto now = now_unix_us() / 1000;
  for (auto& e : o.entries) {
    std::cout << e.name << ": " << e.task << " " << e.timing.describe()
              << ", queue " << (e.queue.empty() ? o.default_queue : e.queue);
    if (e.expires > 0)
      std::cout << ", expires " << e.expires << " s";
    if (!e.kwargs.empty())
      std::cout << ", kwargs " << to_repr(value{e.kwargs});
    if (!e.args.empty())
      std::cout << ", args " << to_repr(value{e.args});
    std::cout << "\n";
    auto t = e.timing.tick_after(now);
    for (size_t i = 0; i < count && t; ++i) {
      std::cout << "  " << format_utc_ms(*t) << "\n";
      t = e.timing.tick_after(*t);
    }
  }
  return 0;
}

// Stops the scheduler after releasing its lock, bounded.
void stop_cron(caf::actor_system& sys, const cron_scheduler_actor& cron) {
  caf::scoped_actor self{sys};
  self->request(cron, std::chrono::seconds{10}, drain_atom_v)
    .receive([](bool) {},
             [](caf::error& err) {
               spdlog::warn("cron scheduler did not stop cleanly: {}",
                            caf::to_string(err));
             });
  self->send_exit(cron, caf::exit_reason::user_shutdown);
}

} // namespace

int run_cron(const config& cfg, bool dry_run, size_t count) {
  auto opts = make_cron_options(cfg);
  if (!opts) {
    std::cerr << "vigil run cron: " << error_text(opts.error()) << "\n";
    return 2;
  }
  if (dry_run)
    return print_cron_schedule(*opts, count);
  if (opts->entries.empty()) {
    std::cerr << "vigil run cron: cron.schedule has no entries\n";
    return 2;
  }
  if (opts->broker_url.starts_with("memory://")) {
    std::cerr << "vigil run cron: broker.url is memory://, which lives inside "
                 "one process: tasks sent there reach no worker; point "
                 "broker.url at redis:// or amqp://, or run the scheduler "
                 "inside `vigil run node`\n";
    return 2;
  }
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  actor_system_config_ext sys_cfg;
  caf::actor_system sys{sys_cfg};
  auto directory = std::make_shared<actor_directory>();
  auto inspection = start_node_inspection(sys, cfg, {"cron", {}, directory});
  if (!inspection) {
    std::cerr << "vigil run cron: " << error_text(inspection.error()) << "\n";
    return 2;
  }
  log_cron_start(*opts);
  auto cron = sys.spawn<caf::detached>(cron_scheduler, std::move(*opts));
  directory->add_typed("cron", cron);
  int sig = 0;
  sigwait(&signals, &sig);
  (*inspection)->stop();
  spdlog::info("received {}: stopping the cron scheduler",
               sig == SIGINT ? "SIGINT" : "SIGTERM");
  stop_cron(sys, cron);
  spdlog::info("vigil cron stopped");
  spdlog::default_logger()->flush();
  return 0;
}

int run_node(const config& cfg, const node_options& opts) {
  // Signals are taken by sigwait below, never by an arbitrary thread.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto copts = make_consumer_options(cfg, opts.queues);
  auto concurrency = resolve_concurrency(cfg, opts.concurrency);
  actor_system_config_ext sys_cfg;
  caf::actor_system sys{sys_cfg};
  auto registry = node_task_registry(cfg);
  // Every long-lived actor of this node, for the inspector and metrics.
  auto directory = std::make_shared<actor_directory>();
  // This node's inspector, endpoint and membership; refuses a management
  // endpoint beyond loopback without inspect.token.
  auto inspection = start_node_inspection(
    sys, cfg,
    {opts.mode, opts.mode == "web" ? std::vector<std::string>{} : copts.queues,
     directory});
  if (!inspection) {
    std::cerr << "vigil run " << opts.mode << ": "
              << error_text(inspection.error()) << "\n";
    spdlog::default_logger()->flush();
    std::_Exit(2);
  }
  // The memory buffer lives in this process: the node applies what it
  // holds before it exits (see docs/BUFFER.md). Opened now so that the
  // store outlives the actors that fill it.
  std::unique_ptr<buffer_flusher> final_flush;
  if (opts.mode != "worker" && cfg.get_string("buffer.backend") == "memory") {
    auto fopts = make_buffer_flush_options(cfg);
    auto f = fopts ? buffer_flusher::open(*fopts)
                   : caf::expected<std::unique_ptr<buffer_flusher>>{fopts.error()};
    if (f)
      final_flush = std::move(*f);
    else
      spdlog::error("buffer: cannot open the final flush: {}",
                    error_text(f.error()));
  }
  std::optional<buffer_actor> buffer;
  if (opts.mode != "worker") {
    auto bopts = make_buffer_service_options(cfg);
    if (!bopts) {
      spdlog::error("buffer: not started: {}", error_text(bopts.error()));
      spdlog::default_logger()->flush();
      std::_Exit(2);
    }
    buffer = sys.spawn<caf::detached>(buffer_service, std::move(*bopts));
    directory->add_typed("buffer", *buffer);
  }
  std::optional<tsdb_actor> tsdb;
  if (opts.mode != "worker") {
    auto topts = make_tsdb_options(cfg);
    if (!topts) {
      spdlog::error("tsdb: not started: {}", error_text(topts.error()));
      spdlog::default_logger()->flush();
      std::_Exit(2);
    }
    tsdb = sys.spawn<caf::detached>(tsdb_service, std::move(*topts));
    directory->add_typed("tsdb", *tsdb);
  }
  std::string queues;
  for (auto& q : copts.queues)
    queues += (queues.empty() ? "" : ",") + q;
  spdlog::info("vigil {} starting: broker {}, queues [{}], concurrency {}, "
               "prefetch {}, results {}",
               opts.mode, mask_url(copts.broker_url), queues, concurrency,
               copts.prefetch,
               copts.result_backend_url.empty()
                 ? std::string{"off"}
                 : mask_url(copts.result_backend_url));
  std::unique_ptr<web_service> web;
  if (opts.mode == "node" || opts.mode == "web") {
    auto started = start_web_service(sys, cfg, {buffer, tsdb, directory,
                                                (*inspection)->inspector()});
    if (!started) {
      spdlog::error("web: not started: {}", error_text(started.error()));
      spdlog::default_logger()->flush();
      std::_Exit(2);
    }
    web = std::move(*started);
    if (auto bind = cfg.get_string("web.bind"); bind.rfind(':') != std::string::npos)
      (*inspection)->identity()->set_web(bind.substr(0, bind.rfind(':')) + ":"
                                         + std::to_string(web->port()));
    if (opts.mode == "web" && copts.broker_url.starts_with("memory://"))
      spdlog::warn("web: broker.url is memory:// and `run web` runs no "
                   "workers: post_process tasks stay in this process until "
                   "max-messages (default 100000) are waiting, then events "
                   "get 503; use `run node`, or a redis:// or amqp:// "
                   "broker");
  }
  // Chart rendering (Chartcuterie's API) beside the web interface.
  std::unique_ptr<chartcuterie_service> charts;
  if (opts.mode == "node" && cfg.get_bool("chart-rendering.enabled")) {
    auto started = start_chartcuterie_service(sys, cfg);
    if (!started) {
      spdlog::error("chartcuterie: not started: {}",
                    error_text(started.error()));
      spdlog::default_logger()->flush();
      std::_Exit(2);
    }
    charts = std::move(*started);
  }
  // pidbox: one revoked set for all of the node's consumers.
  copts.revoked = std::make_shared<revoked_set>(
    static_cast<size_t>(std::max<int64_t>(1, cfg.get_int("worker.revokes-max"))),
    std::chrono::seconds{static_cast<int64_t>(
      cfg.get_double("worker.revokes-expires"))});
  std::optional<task_supervisor_actor> sup;
  if (opts.mode != "web") {
    sup = sys.spawn(task_supervisor, copts,
                    static_cast<size_t>(cfg.get_int("worker.consumers")),
                    concurrency, registry);
    directory->add_typed("tasks", *sup, status_reply::list);
  }
  // pidbox: Celery's remote control, on a Redis or RabbitMQ broker.
  std::optional<remote_control_actor> pidbox;
  if (sup && cfg.get_bool("worker.remote-control")
      && (copts.broker_url.starts_with("redis://")
          || copts.broker_url.starts_with("amqp://"))) {
    remote_control_options ro;
    ro.hostname = worker_hostname(cfg);
    ro.broker_url = copts.broker_url;
    ro.tasks = registry->names();
    ro.queues = copts.queues;
    ro.concurrency = concurrency;
    ro.prefetch = copts.prefetch;
    ro.io_timeout = copts.io_timeout;
    ro.revoked = copts.revoked;
    ro.send_events = cfg.get_bool("worker.send-events");
    pidbox = sys.spawn<caf::detached>(remote_control, std::move(ro));
  }
  std::optional<cron_scheduler_actor> cron;
  if (opts.mode == "node") {
    if (auto cron_opts = make_cron_options(cfg); !cron_opts) {
      spdlog::error("cron scheduler not started: {}",
                    error_text(cron_opts.error()));
    } else if (!cron_opts->entries.empty()) {
      log_cron_start(*cron_opts);
      cron = sys.spawn<caf::detached>(cron_scheduler, std::move(*cron_opts));
      directory->add_typed("cron", *cron);
    }
  }
  int sig = 0;
  sigwait(&signals, &sig);
  // Out of the cluster's list first: a stopping node takes no part.
  (*inspection)->stop();
  if (cron)
    stop_cron(sys, *cron);
  spdlog::info("received {}: draining (at most {} s)",
               sig == SIGINT ? "SIGINT" : "SIGTERM", copts.shutdown_timeout);
  int code = 0;
  // Stop taking events first: everything answered 200 is stored already.
  if (web)
    web->stop();
  if (charts)
    charts->stop();
  if (buffer) {
    // What ingestion added is written to the store before the node goes.
    caf::scoped_actor self{sys};
    self->request(*buffer, std::chrono::seconds{30}, flush_atom_v)
      .receive(
        [&](bool ok) {
          if (!ok)
            spdlog::error("buffer: its store refused the last increments");
        },
        [&](caf::error& err) {
          spdlog::error("buffer: final write failed: {}", caf::to_string(err));
        });
    self->send_exit(*buffer, caf::exit_reason::user_shutdown);
  }
  if (tsdb)
    caf::anon_send_exit(*tsdb, caf::exit_reason::user_shutdown);
  if (sup) {
    caf::scoped_actor self{sys};
    auto timeout = std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::duration<double>(copts.shutdown_timeout))
                   + std::chrono::seconds{10};
    self->request(*sup, timeout, drain_atom_v)
      .receive([&](bool complete) {
                 if (!complete)
                   spdlog::warn("drain incomplete: running tasks were given "
                                "back to the broker");
               },
               [&](caf::error& err) {
                 spdlog::error("drain failed: {}", caf::to_string(err));
               });
    self->send_exit(*sup, caf::exit_reason::user_shutdown);
  }
  if (pidbox) {
    // Stopped last, so it answers during the drain; waited for (bounded),
    // so its worker-offline event is out before the process ends.
    caf::scoped_actor self{sys};
    self->monitor(*pidbox);
    self->send_exit(*pidbox, caf::exit_reason::user_shutdown);
    self->receive([](caf::down_msg&) {},
                  caf::after(std::chrono::seconds{3}) >> [] {});
  }
  if (final_flush) {
    auto r = final_flush->flush_all();
    if (!r)
      spdlog::error("buffer: final flush failed, buffered counts are lost: {}",
                    error_text(r.error()));
    else if (r->rows > 0)
      spdlog::info("buffer: applied {} buffered row(s) before exiting", r->rows);
  }
  spdlog::info("vigil {} stopped", opts.mode);
  spdlog::default_logger()->flush();
  // A task stuck in a blocking call would keep its thread (and the actor
  // system's shutdown) waiting forever; its message was given back already.
  std::_Exit(code);
}

} // namespace vigil
