#include "node/chartcuterie_mode.hpp"

#include <csignal>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "messages/errors.hpp"
#include "node/actor_system.hpp"
#include "node/inspection.hpp"
#include "web/chartcuterie.hpp"

namespace vigil {

int run_chartcuterie(const config& cfg) {
  // Signals are taken by sigwait below, never by an arbitrary thread.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  actor_system_config_ext sys_cfg;
  caf::actor_system sys{sys_cfg};
  auto inspection = start_node_inspection(
    sys, cfg, {"chartcuterie", {}, std::make_shared<actor_directory>()});
  if (!inspection) {
    spdlog::error("chartcuterie: not started: {}",
                  error_text(inspection.error()));
    spdlog::default_logger()->flush();
    std::_Exit(2);
  }
  auto svc = start_chartcuterie_service(sys, cfg);
  if (!svc) {
    spdlog::error("chartcuterie: not started: {}", error_text(svc.error()));
    spdlog::default_logger()->flush();
    std::_Exit(2);
  }
  int sig = 0;
  sigwait(&signals, &sig);
  spdlog::info("received {}: chartcuterie stopping",
               sig == SIGINT ? "SIGINT" : "SIGTERM");
  (*inspection)->stop();
  (*svc)->stop();
  spdlog::default_logger()->flush();
  // Renders in flight have nothing to keep; no drain needed.
  std::_Exit(0);
}

} // namespace vigil
