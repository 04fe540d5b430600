// Sentry's RedisRateLimiter: INCR then EXPIRE to the bucket's end, both
// pipelined, every check of a batch in one round trip.

#include <chrono>
#include <optional>

#include "actors/backends/quota.hpp"
#include "actors/backends/rate_limiter.hpp"
#include "adapters/redis.hpp"
#include "messages/errors.hpp"

namespace vigil {

namespace {

class redis_rate_limiter : public rate_limiter_backend {
public:
  redis_rate_limiter(const rate_limiter_options& opts, redis_endpoint ep)
    : opts_(opts), ep_(std::move(ep)),
      clock_(opts.clock ? opts.clock : quota_system_now) {
    // nop
  }

  std::string describe() const override {
    return to_string(ep_);
  }

  caf::expected<std::vector<rate_limit_result>>
  is_limited_batch(const std::vector<rate_limit_check>& checks) override {
    if (!conn_ || !conn_->ok()) {
      conn_.reset();
      // Connecting to a hung server costs a timeout: try at most every
      // 200 ms; meanwhile calls fail at once (and the actor fails open).
      auto t = std::chrono::steady_clock::now();
      if (t - last_connect_ < std::chrono::milliseconds{200})
        return caf::make_error(errc::connection_failed,
                               "redis " + to_string(ep_) + ": not connected");
      last_connect_ = t;
      auto conn = redis_connection::connect(ep_, opts_.timeout);
      if (!conn)
        return conn.error();
      conn_ = std::move(*conn);
    }
    auto now = clock_();
    std::vector<rate_limit_result> out;
    out.reserve(checks.size());
    for (auto& c : checks) {
      auto window = c.window > 0 ? c.window : rate_limit_default_window;
      auto bucket = now / window;
      auto key = rate_limit_key(c, bucket);
      // Modern Sentry: the TTL is what is left of the bucket.
      auto ttl = std::to_string(window - now % window);
      conn_->append({"INCR", key});
      conn_->append({"EXPIRE", key, ttl});
      out.push_back({false, 0, (bucket + 1) * window});
    }
    auto replies = conn_->flush();
    if (!replies) {
      conn_.reset();
      return replies.error();
    }
    for (size_t i = 0; i < checks.size(); ++i) {
      auto& r = (*replies)[2 * i];
      if (!r.is_integer())
        return caf::make_error(errc::command_failed,
                               "INCR failed: " + r.error_text());
      out[i].count = r.as_int();
      out[i].limited = out[i].count > checks[i].limit;
    }
    return out;
  }

private:
  rate_limiter_options opts_;
  redis_endpoint ep_;
  std::optional<redis_connection> conn_;
  std::function<int64_t()> clock_;
  std::chrono::steady_clock::time_point last_connect_{};
};

} // namespace

caf::expected<std::unique_ptr<rate_limiter_backend>>
make_redis_rate_limiter(const rate_limiter_options& opts) {
  auto ep = parse_redis_url(opts.url);
  if (!ep)
    return ep.error();
  return std::unique_ptr<rate_limiter_backend>{
    std::make_unique<redis_rate_limiter>(opts, std::move(*ep))};
}

} // namespace vigil
