#include "actors/backends/metrics.hpp"

#include <mutex>

#include <spdlog/spdlog.h>

#include "actors/metrics.hpp"
#include "messages/errors.hpp"

namespace vigil {

metrics_backend::~metrics_backend() {
  // nop
}

namespace {

class dummy_backend : public metrics_backend {
public:
  std::string describe() const override {
    return "dummy";
  }
  void emit(const std::vector<metric_point>&, double) override {
    // nop
  }
};

/// Sentry's LoggingBackend: one debug line per point.
class logging_backend : public metrics_backend {
public:
  explicit logging_backend(std::string prefix) : prefix_(std::move(prefix)) {
    // nop
  }
  std::string describe() const override {
    return "logging (debug level)";
  }
  void emit(const std::vector<metric_point>& points, double) override {
    if (!spdlog::should_log(spdlog::level::debug))
      return;
    for (auto& p : points)
      spdlog::debug("metrics: {}", metric_log_line(p, prefix_));
  }

private:
  std::string prefix_;
};

/// The cumulative state behind GET /metrics, shared with the page.
class prometheus_page : public metrics::exposition {
public:
  void add(const std::vector<metric_point>& points, const std::string& prefix) {
    std::lock_guard guard{mtx_};
    for (auto& p : points)
      state_.add(p, prefix);
  }
  std::string render() const override {
    std::lock_guard guard{mtx_};
    return state_.render();
  }
  uint64_t clashes() const {
    std::lock_guard guard{mtx_};
    return state_.clashes();
  }

private:
  mutable std::mutex mtx_;
  prometheus_state state_;
};

class prometheus_backend : public metrics_backend {
public:
  explicit prometheus_backend(std::string prefix)
    : prefix_(std::move(prefix)), page_(std::make_shared<prometheus_page>()) {
    metrics::publish_exposition(page_);
  }
  ~prometheus_backend() override {
    metrics::publish_exposition(nullptr);
  }
  std::string describe() const override {
    return "prometheus (GET /metrics)";
  }
  void emit(const std::vector<metric_point>& points, double) override {
    page_->add(points, prefix_);
  }
  std::map<std::string, std::string> figures() const override {
    return {{"name clashes", std::to_string(page_->clashes())}};
  }

private:
  std::string prefix_;
  std::shared_ptr<prometheus_page> page_;
};

} // namespace

std::unique_ptr<metrics_backend>
make_prometheus_metrics_backend(const metrics_config& cfg) {
  return std::make_unique<prometheus_backend>(cfg.prefix);
}

caf::expected<std::unique_ptr<metrics_backend>>
make_metrics_backend(const metrics_config& cfg) {
  if (cfg.backend == "dummy")
    return std::unique_ptr<metrics_backend>{std::make_unique<dummy_backend>()};
  if (cfg.backend == "logging")
    return std::unique_ptr<metrics_backend>{
      std::make_unique<logging_backend>(cfg.prefix)};
  if (cfg.backend == "statsd")
    return make_statsd_metrics_backend(cfg, statsd_flavor::statsd);
  if (cfg.backend == "dogstatsd")
    return make_statsd_metrics_backend(cfg, statsd_flavor::dogstatsd);
  if (cfg.backend == "datadog")
    return make_datadog_metrics_backend(cfg);
  if (cfg.backend == "prometheus")
    return make_prometheus_metrics_backend(cfg);
  return caf::make_error(errc::bad_config,
                         "metrics.backend: unknown backend '" + cfg.backend
                           + "'");
}

} // namespace vigil
