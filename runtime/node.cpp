#include "runtime/node.hpp"

#include <csignal>
#include <thread>

#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <spdlog/spdlog.h>

#include "messages/errors.hpp"
#include "runtime/actor_system.hpp"
#include "runtime/task_supervisor.hpp"

namespace vigil {

consumer_options make_consumer_options(const config& cfg,
                                       const std::vector<std::string>& queues) {
  consumer_options o;
  o.broker_url = cfg.get_string("broker.url");
  o.queues = queues;
  if (o.queues.empty())
    o.queues = cfg.get_string_list("tasks.queues");
  if (o.queues.empty())
    o.queues.push_back(cfg.get_string("tasks.default-queue"));
  o.prefetch = static_cast<size_t>(std::max<int64_t>(1, cfg.get_int("broker.prefetch")));
  o.fetch_batch = std::min<size_t>(o.prefetch, 500);
  o.visibility_timeout = cfg.get_double("broker.visibility-timeout");
  o.restore_interval = cfg.get_double("broker.restore-interval");
  o.poll_interval = cfg.get_double("broker.poll-interval");
  o.result_backend_url = cfg.get_string("tasks.result-backend");
  o.result_expires = cfg.get_int("tasks.result-expires");
  o.result_serializer = cfg.get_string("tasks.result-serializer");
  o.shutdown_timeout = cfg.get_double("worker.shutdown-timeout");
  return o;
}

size_t resolve_concurrency(const config& cfg, size_t requested) {
  if (requested > 0)
    return requested;
  auto configured = cfg.get_int("worker.concurrency");
  if (configured > 0)
    return static_cast<size_t>(configured);
  return std::max(1u, std::thread::hardware_concurrency());
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
  auto registry = default_task_registry();
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
  auto sup = sys.spawn(task_supervisor, copts,
                       static_cast<size_t>(cfg.get_int("worker.consumers")),
                       concurrency, registry);
  int sig = 0;
  sigwait(&signals, &sig);
  spdlog::info("received {}: draining (at most {} s)",
               sig == SIGINT ? "SIGINT" : "SIGTERM", copts.shutdown_timeout);
  int code = 0;
  {
    caf::scoped_actor self{sys};
    auto timeout = std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::duration<double>(copts.shutdown_timeout))
                   + std::chrono::seconds{10};
    self->request(sup, timeout, drain_atom_v)
      .receive([&](bool complete) {
                 if (!complete)
                   spdlog::warn("drain incomplete: running tasks were given "
                                "back to the broker");
               },
               [&](caf::error& err) {
                 spdlog::error("drain failed: {}", caf::to_string(err));
               });
    self->send_exit(sup, caf::exit_reason::user_shutdown);
  }
  spdlog::info("vigil {} stopped", opts.mode);
  spdlog::default_logger()->flush();
  // A task stuck in a blocking call would keep its thread (and the actor
  // system's shutdown) waiting forever; its message was given back already.
  std::_Exit(code);
}

} // namespace vigil
