#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <caf/expected.hpp>

#include "messages/md5.hpp"
#include "messages/quota_messages.hpp"

namespace vigil {

/// Sentry's default rate-limiter window in seconds.
constexpr int64_t rate_limit_default_window = 60;

/// The Redis key Sentry's RedisRateLimiter uses:
/// `rl:{md5(key)}[:{project}]:{bucket}`.
std::string rate_limit_key(const rate_limit_check& c, int64_t bucket);

/// A fixed-window counter store (Sentry's RateLimiter). Calls block for at
/// most the backend's timeout; one backend per thread.
class rate_limiter_backend {
public:
  virtual ~rate_limiter_backend();

  /// A description for logs, without secrets.
  virtual std::string describe() const = 0;

  /// Counts every call in order (counted even when limited, as Sentry) and
  /// answers each: limited when the count exceeds the limit.
  virtual caf::expected<std::vector<rate_limit_result>>
  is_limited_batch(const std::vector<rate_limit_check>& checks) = 0;
};

/// How to reach a rate-limiter store.
struct rate_limiter_options {
  /// "memory" or "redis".
  std::string backend = "memory";
  /// redis: the server; memory: a store name shared in this process.
  std::string url = "memory://ratelimiter";
  std::chrono::milliseconds timeout{2000};
  /// Unix seconds; the system clock when empty.
  std::function<int64_t()> clock;
};

/// Creates the in-process backend.
std::unique_ptr<rate_limiter_backend>
make_memory_rate_limiter(const rate_limiter_options& opts);

/// Connects to Redis.
caf::expected<std::unique_ptr<rate_limiter_backend>>
make_redis_rate_limiter(const rate_limiter_options& opts);

/// Creates the backend `opts.backend` names.
caf::expected<std::unique_ptr<rate_limiter_backend>>
make_rate_limiter_backend(const rate_limiter_options& opts);

} // namespace vigil
