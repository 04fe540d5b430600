#pragma once

// Celery's per-task rate limits for a node's consumers: set by the
// remote-control `rate_limit` command, enforced as a token bucket per task
// (kombu's TokenBucket with capacity 1, as Celery's consumer keeps them): a
// due delivery over its task's rate waits, held like an ETA message, for
// its token. Shared by the node's remote control and its consumers; locks.

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include <caf/expected.hpp>

#include "messages/value.hpp"

namespace vigil {

/// Tasks per second in a Celery rate string, as celery.utils.time.rate
/// reads it: "10/s", "10/m", "10/h", a plain number (per second); "", "0"
/// and nil are no limit (0). Anything else: errc::malformed, with the
/// reason as Python would word it.
caf::expected<double> parse_celery_rate(const value& rate);

class task_rate_limits {
public:
  /// Sets `task`'s rate in tasks per second (0 removes the limit).
  void set(const std::string& task, double per_second);

  /// Takes a token for one run of `task` at `now_us` (Unix microseconds):
  /// how many microseconds the run must wait for it (0: run now).
  int64_t reserve(const std::string& task, int64_t now_us);

  /// Deliveries held back for their token so far.
  std::atomic<uint64_t> delayed{0};

private:
  struct bucket {
    double per_second = 0;
    /// When the next token is free, Unix microseconds.
    int64_t next_us = 0;
  };
  std::mutex mtx_;
  std::unordered_map<std::string, bucket> buckets_;
  /// Lets `reserve` skip the lock while no rate limit is set.
  std::atomic<bool> any_{false};
};

} // namespace vigil
