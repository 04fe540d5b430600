// The statsd and DogStatsD backends: each interval's points as lines,
// packed into datagrams of at most metrics.options max-datagram bytes, sent
// without blocking. A daemon that is not there costs dropped datagrams,
// counted, never an error.

#include "actors/backends/metrics.hpp"

#include "adapters/udp.hpp"
#include "messages/errors.hpp"

namespace vigil {

namespace {

class statsd_backend : public metrics_backend {
public:
  statsd_backend(const metrics_config& cfg, statsd_flavor flavor,
                 std::unique_ptr<udp_sender> out)
    : cfg_(cfg), flavor_(flavor), out_(std::move(out)) {
    // nop
  }

  std::string describe() const override {
    return std::string{flavor_ == statsd_flavor::statsd ? "statsd"
                                                        : "dogstatsd"}
           + " udp://" + cfg_.host + ":" + std::to_string(cfg_.port);
  }

  void emit(const std::vector<metric_point>& points, double) override {
    lines_.clear();
    for (auto& p : points)
      append_statsd_lines(lines_, p, cfg_.prefix, flavor_, cfg_.tags);
    for (auto& d : pack_datagrams(lines_, cfg_.max_datagram))
      out_->send(d);
  }

  std::map<std::string, std::string> figures() const override {
    return {{"datagrams sent", std::to_string(out_->sent())},
            {"datagrams dropped", std::to_string(out_->dropped())}};
  }

private:
  metrics_config cfg_;
  statsd_flavor flavor_;
  std::unique_ptr<udp_sender> out_;
  std::vector<std::string> lines_;
};

} // namespace

caf::expected<std::unique_ptr<metrics_backend>>
make_statsd_metrics_backend(const metrics_config& cfg, statsd_flavor flavor) {
  auto out = udp_sender::open(cfg.host, cfg.port);
  if (!out)
    return caf::make_error(errc::bad_config,
                           "metrics.options: " + error_text(out.error()));
  return std::unique_ptr<metrics_backend>{
    std::make_unique<statsd_backend>(cfg, flavor, std::move(*out))};
}

} // namespace vigil
