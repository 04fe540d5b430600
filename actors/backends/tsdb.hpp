#pragma once

// The time-series store: counters and distinct counts per model, key and
// bucket of each rollup (Sentry's sentry.tsdb). Backends: dummy (keeps
// nothing), memory (one process), redis (RedisTSDB's layout).

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include "messages/tsdb_keys.hpp"
#include "messages/tsdb_messages.hpp"

namespace vigil {

/// A TSDB. Calls block for at most the backend's timeout, so a backend
/// lives in a detached actor, one per thread.
class tsdb_backend {
public:
  virtual ~tsdb_backend();

  /// A description for logs, without secrets.
  virtual std::string describe() const = 0;

  /// Adds every increment to its bucket in every rollup (Sentry's
  /// incr_multi; several of one bucket are summed first).
  virtual caf::error incr_multi(const std::vector<tsdb_incr>& items) = 0;

  /// The counts of each key per bucket, ascending, 0 where nothing was
  /// counted (get_range).
  virtual caf::expected<std::vector<std::vector<tsdb_point>>>
  get_range(tsdb_model model, const std::vector<tsdb_key>& keys,
            const tsdb_range& range) = 0;

  /// Adds the values to each key's distinct count in every rollup
  /// (record_multi).
  virtual caf::error record_multi(const std::vector<tsdb_record>& items) = 0;

  /// The distinct count of each key per bucket (get_distinct_counts_series).
  virtual caf::expected<std::vector<std::vector<tsdb_point>>>
  get_distinct_counts_series(tsdb_model model,
                             const std::vector<tsdb_key>& keys,
                             const tsdb_range& range) = 0;

  /// The distinct count of each key over the whole range, the union of its
  /// buckets (get_distinct_counts_totals).
  virtual caf::expected<std::vector<int64_t>>
  get_distinct_counts_totals(tsdb_model model,
                             const std::vector<tsdb_key>& keys,
                             const tsdb_range& range) = 0;
};

/// The environments a write counts for: all of them (nullopt) and, when
/// given, its own (Sentry writes both fields).
std::vector<std::optional<int64_t>>
tsdb_environments(std::optional<int64_t> environment_id);

/// Fails unless `rollup` is one of `rollups` (errc::malformed, naming
/// tsdb.rollups).
caf::error check_tsdb_rollup(const std::vector<tsdb_rollup>& rollups,
                             int64_t rollup);

/// The sum of each series (Sentry's get_sums over get_range).
std::vector<int64_t> tsdb_sums(const std::vector<std::vector<tsdb_point>>& s);

/// How to reach a TSDB.
struct tsdb_backend_options {
  /// "dummy", "memory" or "redis".
  std::string backend = "dummy";
  /// redis: the server; memory: a store name shared in this process.
  std::string url = "memory://tsdb";
  /// Finest first (tsdb.rollups).
  std::vector<tsdb_rollup> rollups = default_tsdb_rollups();
  /// Unix seconds now; the system clock when empty (expiry).
  std::function<int64_t()> clock;
  /// redis: bound on every blocking call.
  std::chrono::milliseconds timeout{2000};
};

/// A TSDB that keeps nothing and answers zeros (Sentry's DummyTSDB).
std::unique_ptr<tsdb_backend> make_dummy_tsdb(const tsdb_backend_options& o);

/// The in-process TSDB; backends with the same `url` share series.
std::unique_ptr<tsdb_backend> make_memory_tsdb(const tsdb_backend_options& o);

/// Sentry's RedisTSDB on the server `o.url`.
caf::expected<std::unique_ptr<tsdb_backend>>
make_redis_tsdb(const tsdb_backend_options& o);

/// Creates the backend `o.backend` names.
caf::expected<std::unique_ptr<tsdb_backend>>
make_tsdb_backend(const tsdb_backend_options& o);

} // namespace vigil
