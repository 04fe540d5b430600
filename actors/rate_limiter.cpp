#include "actors/rate_limiter.hpp"

#include <cctype>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/backends/quota.hpp"
#include "config/config.hpp"
#include "config/organizations.hpp"
#include "messages/errors.hpp"

namespace vigil {

namespace {

using self_ptr = rate_limiter_actor::stateful_pointer<rate_limiter_state>;

std::vector<rate_limit_result>
decide(self_ptr self, const std::vector<rate_limit_check>& checks) {
  auto& st = self->state;
  caf::expected<std::vector<rate_limit_result>> results{caf::error{}};
  if (!st.backend) {
    auto b = make_rate_limiter_backend(st.opts);
    if (b)
      st.backend = std::move(*b);
    else
      results = b.error();
  }
  if (st.backend)
    results = st.backend->is_limited_batch(checks);
  st.counters.processed += checks.size();
  if (results)
    return std::move(*results);
  auto text = error_text(results.error());
  auto now = std::chrono::steady_clock::now();
  // Logged once a minute: a dead store fails every batch.
  if (now - st.last_warning >= std::chrono::minutes{1}) {
    st.last_warning = now;
    spdlog::warn("ratelimiter: store failed, failing open: {}", text);
  }
  st.counters.fail(std::move(text));
  st.failed_open += checks.size();
  // Sentry's is_limited_with_value on a RedisError: (False, 0, reset_time).
  auto t = quota_system_now();
  std::vector<rate_limit_result> open;
  open.reserve(checks.size());
  for (auto& c : checks) {
    auto window = c.window > 0 ? c.window : rate_limit_default_window;
    open.push_back({false, 0, (t / window + 1) * window});
  }
  return open;
}

std::optional<rate_limit_check> auth_check(int64_t limit, std::string key) {
  if (limit <= 0)
    return std::nullopt;
  rate_limit_check c;
  c.key = std::move(key);
  c.limit = limit;
  c.window = rate_limit_default_window;
  return c;
}

} // namespace

rate_limiter_actor::behavior_type rate_limiter_service(self_ptr self,
                                                       rate_limiter_options opts) {
  self->state.opts = std::move(opts);
  return {
    [=](rate_limit_check& c) -> caf::result<rate_limit_result> {
      auto rp = self->state.batch.add(self, std::move(c));
      self->state.batch.schedule(self);
      return rp;
    },
    [=](batch_atom) {
      self->state.batch.run([self](const std::vector<rate_limit_check>& xs) {
        return decide(self, xs);
      });
    },
    [=](status_atom) {
      auto& st = self->state;
      auto out = make_status(self, st.counters);
      out.extra["backend"] = st.backend ? st.backend->describe() : "none";
      out.extra["failed_open"] = std::to_string(st.failed_open);
      return out;
    },
  };
}

caf::expected<rate_limiter_options> make_rate_limiter_options(const config& cfg) {
  rate_limiter_options out;
  out.backend = cfg.get_string("ratelimiter.backend");
  if (out.backend == "redis") {
    auto url = redis_cluster_url(cfg, "ratelimiter.options");
    if (!url)
      return url.error();
    out.url = *url;
  }
  return out;
}

std::optional<rate_limit_check> api_ip_check(int64_t limit_per_minute,
                                             std::string_view ip) {
  std::string key = "auth:ip:";
  key += ip;
  return auth_check(limit_per_minute, std::move(key));
}

std::optional<rate_limit_check> api_user_check(int64_t limit_per_minute,
                                               std::string_view username) {
  // Sentry's clean_username: strip(" \n\t\r\0"), then lower().
  constexpr std::string_view blank{" \n\t\r\0", 5};
  auto first = username.find_first_not_of(blank);
  if (first == std::string_view::npos)
    return std::nullopt;
  auto last = username.find_last_not_of(blank);
  std::string key = "auth:username:";
  for (auto ch : username.substr(first, last - first + 1))
    key += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return auth_check(limit_per_minute, std::move(key));
}

} // namespace vigil
