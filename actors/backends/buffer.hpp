#pragma once

// The write buffer's store: counter increments of SQL rows, coalesced per
// row until a flush applies their sums (Sentry's sentry.buffer). Backends:
// memory (one process) and redis (RedisBuffer's layout, shared by nodes).

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include "messages/buffer_keys.hpp"
#include "messages/buffer_messages.hpp"

namespace vigil {

/// A row taken out of the buffer to be applied to SQL. Its sums stay in the
/// store under `take_id` until `finish`: a flush that dies after the take
/// leaves them for `unfinished`, and the SQL apply records `take_id` in the
/// same transaction, so applying a take twice counts it once.
struct buffer_take {
  std::string take_id;
  /// The row key the sums came from (messages/buffer_keys).
  std::string row_key;
  buffer_incr sums;
  /// When the take happened, Unix seconds.
  int64_t taken_at = 0;
};

/// Figures of a buffer store.
struct buffer_backend_stats {
  /// Increments given to `incr` and rows they touched.
  uint64_t increments = 0;
  uint64_t row_writes = 0;
  /// Rows taken, and takes found empty (another flush had them).
  uint64_t takes = 0;
  uint64_t empty_takes = 0;
};

/// A buffer store. Calls block for at most the backend's timeout, so a
/// backend lives in a detached actor, one per thread.
class buffer_backend {
public:
  virtual ~buffer_backend();

  /// A description for logs, without secrets.
  virtual std::string describe() const = 0;

  /// Adds every increment (several of one row are summed first) and marks
  /// the rows pending, at time `now` (Unix seconds). Returns once the store
  /// holds them: that is when the caller may acknowledge.
  virtual caf::error incr(const std::vector<buffer_incr>& batch,
                          int64_t now) = 0;

  /// The counters `columns` of a row not yet flushed (Sentry's `get`):
  /// missing ones are 0.
  virtual caf::expected<std::map<std::string, int64_t>>
  get(const std::string& model, const std::vector<std::string>& columns,
      const buffer_fields& filters) = 0;

  /// The keys of pending rows in `partition`, oldest first, at most
  /// `limit`.
  virtual caf::expected<std::vector<std::string>> pending(int partition,
                                                          size_t limit) = 0;

  /// How many rows are pending in `partition` (`vigil buffer stats`).
  virtual caf::expected<size_t> pending_count(int partition) = 0;

  /// Takes row `row_key` out of the buffer (atomically: an increment comes
  /// before the take, and is in it, or after, and stays for the next one);
  /// nullopt when the row is empty or another flush holds it.
  virtual caf::expected<std::optional<buffer_take>>
  take(const std::string& row_key, int64_t now) = 0;

  /// Forgets a take whose sums are applied.
  virtual caf::error finish(const std::string& take_id) = 0;

  /// Takes not finished since before `older_than` (their flush died).
  virtual caf::expected<std::vector<buffer_take>>
  unfinished(int64_t older_than) = 0;

  /// Takes the lock `name` for `ttl` unless another holder has it (SET NX
  /// EX); `token` identifies the holder for `unlock`.
  virtual caf::expected<bool> try_lock(const std::string& name,
                                       const std::string& token,
                                       std::chrono::seconds ttl) = 0;

  /// Releases `name` if `token` still holds it.
  virtual caf::error unlock(const std::string& name,
                            const std::string& token) = 0;

  /// The store's figures.
  virtual buffer_backend_stats stats() const = 0;
};

/// How to reach a buffer store.
struct buffer_backend_options {
  /// "memory" or "redis".
  std::string backend = "memory";
  /// redis: the server; memory: a store name shared in this process.
  std::string url = "memory://buffer";
  /// Pending sets (Sentry's pending_partitions).
  int partitions = 1;
  /// Bound on every blocking call.
  std::chrono::milliseconds timeout{2000};
};

/// The in-process store; backends with the same `url` share rows.
std::unique_ptr<buffer_backend>
make_memory_buffer_backend(const buffer_backend_options& opts);

/// Sentry's RedisBuffer on the server `opts.url`.
caf::expected<std::unique_ptr<buffer_backend>>
make_redis_buffer_backend(const buffer_backend_options& opts);

/// Creates the backend `opts.backend` names.
caf::expected<std::unique_ptr<buffer_backend>>
make_buffer_backend(const buffer_backend_options& opts);

} // namespace vigil
