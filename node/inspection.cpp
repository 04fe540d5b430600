#include "node/inspection.hpp"

#include <unistd.h>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

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
    if (endpoint_)
      endpoint_->stop();
    endpoint_.reset();
    if (inspector_)
      caf::anon_send_exit(inspector_, caf::exit_reason::user_shutdown);
  }

  std::shared_ptr<node_identity> identity_;
  inspector_actor inspector_;
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
  auto out = std::make_unique<running_inspection>();
  out->identity_ = std::make_shared<node_identity>(make_node_card(cfg, opts));
  inspector_options io;
  io.directory = opts.directory;
  io.identity = out->identity_;
  io.timeout = seconds_ms(cfg.get_double("inspect.timeout"));
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
  return std::unique_ptr<node_inspection>{std::move(out)};
}

} // namespace vigil
