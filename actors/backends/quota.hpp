#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include "messages/quota_messages.hpp"
#include "messages/quota_rules.hpp"

namespace vigil {

/// A clock in Unix seconds; backends take one so that tests can move time.
using quota_clock = std::function<int64_t()>;

/// The system clock in Unix seconds.
int64_t quota_system_now();

/// Figures of a quota store for status and the bench.
struct quota_backend_stats {
  /// Checks rejected from the local cache of exhausted quotas.
  uint64_t cache_hits = 0;
  /// Script calls and runs of identical checks they decided (redis).
  uint64_t scripts = 0;
  uint64_t runs = 0;
  /// Connections made after the first (redis).
  uint64_t reconnects = 0;
};

/// A quota store. Calls block for at most the timeout the backend was made
/// with, so a backend lives in a detached actor (or a CLI command), one per
/// thread. Backends: memory (in-process), redis (Relay's key layout).
class quota_backend {
public:
  virtual ~quota_backend();

  /// A description for logs, without secrets.
  virtual std::string describe() const = 0;

  /// Decides every check in order, each exactly as if it ran alone after the
  /// ones before it: per check, every matching quota is incremented or none.
  virtual caf::expected<std::vector<quota_decision>>
  check_batch(const std::vector<quota_check>& checks) = 0;

  /// Gives `quantity` back to every tracked quota of `quotas` matching
  /// `scoping` in the current window (Sentry's refund).
  virtual caf::error refund(const quota_scoping& scoping,
                            const std::vector<quota_config>& quotas,
                            int64_t quantity) = 0;

  /// Counted minus refunded for `q` in the current window; -1 if `q` is
  /// untracked or has no counter (Sentry's get_usage).
  virtual caf::expected<int64_t> get_usage(const quota_scoping& scoping,
                                           const quota_config& q) = 0;

  /// The store's figures (all zero unless it keeps them).
  virtual quota_backend_stats stats() const;
};

/// How to reach a quota store.
struct quota_backend_options {
  /// "memory" or "redis".
  std::string backend = "memory";
  /// redis: the server; memory: a store name shared in this process.
  std::string url = "memory://quotas";
  /// Bound on every blocking call.
  std::chrono::milliseconds timeout{2000};
  /// Unix seconds; the system clock when empty.
  quota_clock clock;
  /// redis: remember exhausted quotas until their window ends, so that
  /// rejected traffic costs no round trip.
  bool cache_exhausted = true;
};

/// Creates the in-process backend; backends with the same `url` share
/// their counters.
std::unique_ptr<quota_backend>
make_memory_quota_backend(const quota_backend_options& opts);

/// Connects to Redis.
caf::expected<std::unique_ptr<quota_backend>>
make_redis_quota_backend(const quota_backend_options& opts);

/// Creates the backend `opts.backend` names.
caf::expected<std::unique_ptr<quota_backend>>
make_quota_backend(const quota_backend_options& opts);

} // namespace vigil
