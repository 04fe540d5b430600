// The Datadog backend: each batch (metrics.interval, 10 s by default) as
// one POST /api/v1/series with the DD-API-KEY header. The key goes in that
// header only: descriptions, logs and errors name the URL, never the key.

#include "actors/backends/metrics.hpp"

#include <unistd.h>

#include <spdlog/spdlog.h>

#include "adapters/curl_http.hpp"

namespace vigil {

namespace {

std::string local_host_name() {
  char buf[256] = {};
  if (gethostname(buf, sizeof(buf) - 1) != 0)
    return {};
  return buf;
}

class datadog_backend : public metrics_backend {
public:
  explicit datadog_backend(const metrics_config& cfg)
    : cfg_(cfg), host_(local_host_name()) {
    auto base = cfg.url.empty() ? "https://api." + cfg.site : cfg.url;
    while (!base.empty() && base.back() == '/')
      base.pop_back();
    url_ = base + "/api/v1/series";
  }

  std::string describe() const override {
    return "datadog " + url_;
  }

  void emit(const std::vector<metric_point>& points, double now) override {
    if (points.empty())
      return;
    curl_request req;
    req.method = "POST";
    req.url = url_;
    req.headers = {{"Content-Type", "application/json"},
                   {"DD-API-KEY", cfg_.api_key}};
    if (!cfg_.app_key.empty())
      req.headers.emplace_back("DD-APPLICATION-KEY", cfg_.app_key);
    req.body = datadog_series_json(points, cfg_.prefix, cfg_.tags, now,
                                   cfg_.interval, host_);
    // Shorter than the interval, so that batches do not pile up.
    req.timeout = std::chrono::milliseconds{
      std::max<int64_t>(1000, static_cast<int64_t>(cfg_.interval * 800))};
    auto res = curl_perform(req);
    if (!res) {
      ++failed_;
      spdlog::warn("metrics: datadog: {}", res.failure.message);
      return;
    }
    if (res.response->status / 100 != 2) {
      ++failed_;
      // The answer's body may quote the request; only the status is logged.
      spdlog::warn("metrics: datadog: POST {} answered {}", url_,
                   res.response->status);
      return;
    }
    ++posted_;
  }

  std::map<std::string, std::string> figures() const override {
    return {{"posts", std::to_string(posted_)},
            {"posts failed", std::to_string(failed_)}};
  }

private:
  metrics_config cfg_;
  std::string host_;
  std::string url_;
  uint64_t posted_ = 0;
  uint64_t failed_ = 0;
};

} // namespace

std::unique_ptr<metrics_backend>
make_datadog_metrics_backend(const metrics_config& cfg) {
  return std::make_unique<datadog_backend>(cfg);
}

} // namespace vigil
