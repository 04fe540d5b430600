#pragma once

// Moving the write buffer's rows into SQL: Sentry's process_pending (under
// the pending set's lock, hand the pending rows out in process_incr tasks
// of incr-batch-size keys) and process_incr (take each row under its own
// lock and apply its sums), as tasks, plus the same work done inline for a
// node's shutdown and for tests.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <caf/expected.hpp>

#include "actors/backends/buffer.hpp"
#include "actors/backends/buffer_sql.hpp"
#include "adapters/sql.hpp"
#include "config/cron_schedule.hpp"
#include "tasks/task_registry.hpp"

namespace vigil {

class config;

/// Sentry's task names, so that a Sentry operator finds them in the queues.
inline constexpr std::string_view process_pending_task
  = "sentry.tasks.process_buffer.process_pending";
inline constexpr std::string_view process_incr_task
  = "sentry.tasks.process_buffer.process_incr";

/// What the flush needs.
struct buffer_flush_options {
  buffer_backend_options store;
  /// The database the sums go to (db.url resolved) and how to open it.
  std::string db_url;
  sql_options db_options;
  /// Where process_incr tasks are sent (broker.url), and their queue.
  std::string broker_url;
  std::string incr_queue = "counters-0";
  /// Rows per process_incr task (incr-batch-size).
  size_t incr_batch_size = 2;
  /// Lock durations: the pending set's (Sentry: 60 s), a row's (10 s).
  std::chrono::seconds pending_lock_ttl{60};
  std::chrono::seconds row_lock_ttl{10};
  /// A take not finished this long after it was made is presumed to belong
  /// to a dead flush, and is applied again (at most once: see buffer_sql).
  int64_t recover_after_secs = 60;
};

/// Figures of one flush step.
struct buffer_flush_result {
  /// Rows handed out (process_pending) or taken (process_incr).
  size_t rows = 0;
  /// Rows another flush held (locked), or found empty.
  size_t skipped = 0;
  /// process_incr tasks sent (flush_pending: transactions run).
  size_t tasks = 0;
  /// The counters' sums in the rows applied (every column's amount).
  int64_t increments = 0;
  buffer_apply_result applied;
};

/// Applies buffered rows to SQL. Not thread-safe: one per thread.
class buffer_flusher {
public:
  buffer_flusher(buffer_flush_options opts, std::unique_ptr<buffer_backend> store,
                 std::unique_ptr<sql_connection> db);

  /// Opens the store and the database of `opts` (creating the tables the
  /// apply needs).
  static caf::expected<std::unique_ptr<buffer_flusher>>
  open(const buffer_flush_options& opts);

  /// process_incr: takes each row under its lock `l:{key}` and applies the
  /// sums in one transaction; a take is finished (forgotten) only after
  /// the commit. A failed apply leaves the takes for `recover`.
  caf::expected<buffer_flush_result>
  apply_rows(const std::vector<std::string>& keys);

  /// Applies again the takes of flushes that died (older than
  /// recover_after_secs), then finishes them.
  caf::expected<buffer_flush_result> recover();

  /// The pending rows of `partition`, in batches of incr_batch_size, under
  /// the pending set's lock; empty when another process holds the lock.
  caf::expected<std::vector<std::vector<std::string>>>
  pending_batches(int partition, bool& locked_out);

  /// What `vigil buffer flush` does: process_pending and process_incr
  /// inline, under the same locks. First the takes of flushes that died
  /// (as process_pending); then, per partition, the pending rows read
  /// under the pending set's lock (waiting up to `lock_wait` for another
  /// reader to release it) and applied in transactions of `batch_size`
  /// rows, each row under its own lock, until the partition is empty or
  /// only rows another flush holds are left (counted in `skipped`).
  caf::expected<buffer_flush_result>
  flush_pending(size_t batch_size, std::chrono::milliseconds lock_wait);

  /// Everything pending in every partition applied here and now (a node's
  /// shutdown with the memory store, tests, the bench).
  caf::expected<buffer_flush_result> flush_all();

  buffer_backend& store() {
    return *store_;
  }
  sql_connection& db() {
    return *db_;
  }

private:
  /// Applies again the unfinished takes made before `cutoff` (Unix
  /// seconds), then finishes them.
  caf::expected<buffer_flush_result> recover_taken_before(int64_t cutoff);

  buffer_flush_options opts_;
  std::unique_ptr<buffer_backend> store_;
  std::unique_ptr<sql_connection> db_;
  std::string token_;
};

/// The queues of the buffer's tasks: process_pending's
/// ("buffers.process_pending") and process_incr's ("counters-0").
std::vector<std::string> buffer_task_queues();

/// Sentry's beat entry `flush-buffers`: process_pending every `every`
/// seconds, expiring after as long, on queue buffers.process_pending.
cron_entry flush_buffers_entry(double every);

/// Options from config: buffer.backend, buffer.options, db.url, broker.url.
caf::expected<buffer_flush_options> make_buffer_flush_options(const config& cfg);

/// Registers process_pending(partition=None) and process_incr(batch_keys)
/// with `opts`; each worker thread opens its own store, database and
/// broker connections on first use.
void register_buffer_tasks(task_registry& reg, buffer_flush_options opts);

} // namespace vigil
