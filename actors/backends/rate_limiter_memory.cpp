// The in-process rate limiter, plus what both backends share: the key layout
// (MD5 as Sentry's md5_text) and the factory.

#include <array>
#include <cstring>
#include <map>
#include <mutex>
#include <unordered_map>

#include "actors/backends/quota.hpp"
#include "actors/backends/rate_limiter.hpp"
#include "messages/errors.hpp"

namespace vigil {

std::string rate_limit_key(const rate_limit_check& c, int64_t bucket) {
  std::string out = "rl:" + md5_hex(c.key);
  if (c.project_id != 0)
    out += ":" + std::to_string(c.project_id);
  out += ":" + std::to_string(bucket);
  return out;
}

rate_limiter_backend::~rate_limiter_backend() {
  // nop
}

namespace {

struct rl_store {
  std::mutex mtx;
  std::unordered_map<std::string, std::pair<int64_t, int64_t>> counts; // n, expires
  int64_t last_sweep = 0;
};

class memory_rate_limiter : public rate_limiter_backend {
public:
  explicit memory_rate_limiter(const rate_limiter_options& opts)
    : name_(opts.url), clock_(opts.clock ? opts.clock : quota_system_now) {
    static std::mutex mtx;
    static std::map<std::string, std::shared_ptr<rl_store>> stores;
    std::lock_guard guard{mtx};
    auto& ptr = stores[name_];
    if (!ptr)
      ptr = std::make_shared<rl_store>();
    store_ = ptr;
  }

  std::string describe() const override {
    return name_;
  }

  caf::expected<std::vector<rate_limit_result>>
  is_limited_batch(const std::vector<rate_limit_check>& checks) override {
    auto now = clock_();
    std::vector<rate_limit_result> out;
    out.reserve(checks.size());
    std::lock_guard guard{store_->mtx};
    if (now - store_->last_sweep >= 60) {
      store_->last_sweep = now;
      std::erase_if(store_->counts,
                    [now](auto& kv) { return kv.second.second <= now; });
    }
    for (auto& c : checks) {
      auto window = c.window > 0 ? c.window : rate_limit_default_window;
      auto bucket = now / window;
      auto& slot = store_->counts[rate_limit_key(c, bucket)];
      if (slot.second <= now)
        slot = {0, (bucket + 1) * window};
      auto n = ++slot.first;
      out.push_back({n > c.limit, n, (bucket + 1) * window});
    }
    return out;
  }

private:
  std::string name_;
  std::function<int64_t()> clock_;
  std::shared_ptr<rl_store> store_;
};

} // namespace

std::unique_ptr<rate_limiter_backend>
make_memory_rate_limiter(const rate_limiter_options& opts) {
  return std::make_unique<memory_rate_limiter>(opts);
}

caf::expected<std::unique_ptr<rate_limiter_backend>>
make_rate_limiter_backend(const rate_limiter_options& opts) {
  if (opts.backend == "memory")
    return make_memory_rate_limiter(opts);
  if (opts.backend == "redis")
    return make_redis_rate_limiter(opts);
  return caf::make_error(errc::bad_config,
                         "unknown rate limiter backend '" + opts.backend + "'");
}

} // namespace vigil
