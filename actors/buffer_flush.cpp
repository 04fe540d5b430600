#include "actors/buffer_flush.hpp"
#include "actors/metrics.hpp"

#include <algorithm>
#include <map>
#include <set>
#include <thread>

#include <spdlog/spdlog.h>

#include "actors/backends/broker.hpp"
#include "actors/backends/event_store.hpp"
#include "config/config.hpp"
#include "config/organizations.hpp"
#include "config/service_options.hpp"
#include "messages/clock.hpp"
#include "messages/errors.hpp"
#include "messages/internal_task.hpp"
#include "messages/task_body.hpp"

namespace vigil {

namespace {

int64_t now_secs() {
  return now_unix_us() / 1000000;
}

// Applied takes are remembered a day: far longer than any retry of the
// flush that made them.
constexpr int64_t applied_memory_secs = 86400;

// Pending rows read per pass of flush_all and per process_pending.
constexpr size_t pending_read_limit = 100000;

// The counters' sums in `takes`.
int64_t counted(const std::vector<buffer_take>& takes) {
  int64_t n = 0;
  for (const auto& t : takes)
    for (const auto& [_, amount] : t.sums.columns)
      n += amount;
  return n;
}

} // namespace

buffer_flusher::buffer_flusher(buffer_flush_options opts,
                               std::unique_ptr<buffer_backend> store,
                               std::unique_ptr<sql_connection> db)
  : opts_(std::move(opts)),
    store_(std::move(store)),
    db_(std::move(db)),
    token_(new_uuid4()) {
  // Nothing.
}

caf::expected<std::unique_ptr<buffer_flusher>>
buffer_flusher::open(const buffer_flush_options& opts) {
  auto store = make_buffer_backend(opts.store);
  if (!store)
    return store.error();
  auto db = sql_connection::open(opts.db_url, opts.db_options);
  if (!db)
    return db.error();
  // The groups the sums go to are the event store's tables.
  if (auto err = event_store::migrate(**db))
    return err;
  if (auto err = bootstrap_buffer_tables(**db))
    return err;
  return std::make_unique<buffer_flusher>(opts, std::move(*store),
                                          std::move(*db));
}

caf::expected<buffer_flush_result>
buffer_flusher::apply_rows(const std::vector<std::string>& keys) {
  buffer_flush_result out;
  auto now = now_secs();
  std::vector<std::string> locked;
  auto unlock_all = [&] {
    for (const auto& name : locked)
      if (auto err = store_->unlock(name, token_))
        spdlog::debug("buffer: unlock {} failed: {}", name, error_text(err));
  };
  std::vector<buffer_take> takes;
  std::set<std::string, std::less<>> mine;
  for (const auto& key : keys) {
    auto lock = buffer_lock_key(key);
    auto got = store_->try_lock(lock, token_, opts_.row_lock_ttl);
    if (!got) {
      unlock_all();
      return got.error();
    }
    if (!*got) {
      ++out.skipped;
      continue;
    }
    locked.push_back(lock);
    mine.insert(key);
    auto take = store_->take(key, now);
    if (!take) {
      unlock_all();
      return take.error();
    }
    if (!*take) {
      ++out.skipped;
      continue;
    }
    takes.push_back(std::move(**take));
  }
  // Takes of these rows a failed attempt left behind (a retry of this
  // task): applying one again is harmless, buffer_sql records each once.
  if (!mine.empty()) {
    auto left = store_->unfinished(now + 1);
    if (!left) {
      unlock_all();
      return left.error();
    }
    for (auto& t : *left)
      if (mine.count(t.row_key)
          && std::none_of(takes.begin(), takes.end(), [&](const auto& x) {
               return x.take_id == t.take_id;
             }))
        takes.push_back(std::move(t));
  }
  out.rows = takes.size();
  if (!takes.empty()) {
    auto applied = apply_buffer_takes(*db_, takes, now);
    if (!applied) {
      // The takes stay in the store: the task's retry (or recover) applies
      // them with the same sums.
      unlock_all();
      return applied.error();
    }
    out.applied = *applied;
    out.increments = counted(takes);
    for (const auto& t : takes)
      if (auto err = store_->finish(t.take_id))
        spdlog::warn("buffer: take {} applied but not forgotten (applied "
                     "again later, counted once): {}",
                     t.take_id, error_text(err));
  }
  unlock_all();
  return out;
}

caf::expected<buffer_flush_result> buffer_flusher::recover() {
  return recover_taken_before(now_secs() - opts_.recover_after_secs);
}

caf::expected<buffer_flush_result>
buffer_flusher::recover_taken_before(int64_t cutoff) {
  buffer_flush_result out;
  auto now = now_secs();
  auto left = store_->unfinished(cutoff);
  if (!left)
    return left.error();
  if (left->empty())
    return out;
  auto applied = apply_buffer_takes(*db_, *left, now);
  if (!applied)
    return applied.error();
  out.rows = left->size();
  out.applied = *applied;
  out.increments = counted(*left);
  for (const auto& t : *left)
    if (auto err = store_->finish(t.take_id))
      return err;
  spdlog::info("buffer: re-applied {} take(s) of flushes that died ({} "
               "already applied)",
               left->size(), applied->already_applied);
  if (auto forgot = forget_applied_takes(*db_, now - applied_memory_secs);
      !forgot)
    spdlog::debug("buffer: forgetting old takes failed: {}",
                  error_text(forgot.error()));
  return out;
}

caf::expected<std::vector<std::vector<std::string>>>
buffer_flusher::pending_batches(int partition, bool& locked_out) {
  locked_out = false;
  std::vector<std::vector<std::string>> out;
  auto lock = buffer_lock_key(
    buffer_partition_key(partition, opts_.store.partitions));
  auto got = store_->try_lock(lock, token_, opts_.pending_lock_ttl);
  if (!got)
    return got.error();
  if (!*got) {
    locked_out = true;
    return out;
  }
  auto keys = store_->pending(partition, pending_read_limit);
  auto released = store_->unlock(lock, token_);
  if (!keys)
    return keys.error();
  metrics::distribution("buffer.pending-size", static_cast<double>(keys->size()));
  if (released)
    spdlog::debug("buffer: unlock {} failed: {}", lock, error_text(released));
  auto size = std::max<size_t>(1, opts_.incr_batch_size);
  for (size_t i = 0; i < keys->size(); i += size)
    out.emplace_back(keys->begin() + static_cast<ptrdiff_t>(i),
                     keys->begin()
                       + static_cast<ptrdiff_t>(std::min(i + size, keys->size())));
  return out;
}

namespace {

void add_result(buffer_flush_result& out, const buffer_flush_result& r) {
  out.rows += r.rows;
  out.skipped += r.skipped;
  out.tasks += r.tasks;
  out.increments += r.increments;
  out.applied.applied += r.applied.applied;
  out.applied.already_applied += r.applied.already_applied;
  out.applied.dropped += r.applied.dropped;
  out.applied.statements += r.applied.statements;
}

} // namespace

caf::expected<buffer_flush_result>
buffer_flusher::flush_pending(size_t batch_size,
                              std::chrono::milliseconds lock_wait) {
  buffer_flush_result out;
  auto recovered = recover();
  if (!recovered)
    return recovered.error();
  add_result(out, *recovered);
  batch_size = std::max<size_t>(1, batch_size);
  auto saved = opts_.incr_batch_size;
  opts_.incr_batch_size = batch_size;
  auto restore = [&] { opts_.incr_batch_size = saved; };
  for (int p = 0; p < std::max(1, opts_.store.partitions); ++p) {
    for (;;) {
      bool locked_out = false;
      auto deadline = std::chrono::steady_clock::now() + lock_wait;
      auto batches = pending_batches(p, locked_out);
      // process_pending holds the lock only while it reads the set: wait
      // for it rather than fail.
      while (batches && locked_out
             && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds{50});
        batches = pending_batches(p, locked_out);
      }
      if (!batches) {
        restore();
        return batches.error();
      }
      if (locked_out) {
        restore();
        return caf::make_error(
          errc::unavailable,
          "another process holds the pending set's lock "
            + buffer_lock_key(buffer_partition_key(p, opts_.store.partitions))
            + " (a process_pending stuck? it expires after "
            + std::to_string(opts_.pending_lock_ttl.count()) + " s)");
      }
      if (batches->empty())
        break;
      size_t listed = 0;
      buffer_flush_result pass;
      for (const auto& keys : *batches) {
        listed += keys.size();
        auto r = apply_rows(keys);
        if (!r) {
          restore();
          return r.error();
        }
        ++pass.tasks;
        add_result(pass, *r);
      }
      add_result(out, pass);
      // Rows others hold stay pending: stop rather than spin on them. A
      // set read whole is done: rows that became pending meanwhile are
      // the next flush's, so a busy buffer cannot keep this one going.
      if (pass.skipped == listed || listed < pending_read_limit)
        break;
    }
  }
  restore();
  return out;
}

caf::expected<buffer_flush_result> buffer_flusher::flush_all() {
  buffer_flush_result out;
  auto add = [&](const buffer_flush_result& r) { add_result(out, r); };
  // Every unfinished take, not only old ones: this process is the one
  // flushing now.
  auto recovered = recover_taken_before(now_secs() + 1);
  if (!recovered)
    return recovered.error();
  add(*recovered);
  for (int p = 0; p < std::max(1, opts_.store.partitions); ++p) {
    for (;;) {
      auto keys = store_->pending(p, 500);
      if (!keys)
        return keys.error();
      if (keys->empty())
        break;
      auto r = apply_rows(*keys);
      if (!r)
        return r.error();
      add(*r);
      // Rows others hold stay pending: stop rather than spin on them.
      if (r->skipped == keys->size())
        break;
    }
  }
  return out;
}

std::vector<std::string> buffer_task_queues() {
  return {"buffers.process_pending", "counters-0"};
}

cron_entry flush_buffers_entry(double every) {
  cron_entry e;
  e.name = "flush-buffers";
  e.task = std::string{process_pending_task};
  e.timing.every_ms = static_cast<int64_t>(every * 1000);
  e.queue = "buffers.process_pending";
  e.expires = every;
  return e;
}

caf::expected<buffer_flush_options> make_buffer_flush_options(const config& cfg) {
  buffer_flush_options out;
  out.store.backend = cfg.get_string("buffer.backend");
  auto opts = read_service_options(cfg, "buffer.options",
                                   buffer_option_fields());
  if (!opts)
    return opts.error();
  out.store.partitions = static_cast<int>(opts->integer("pending-partitions"));
  out.incr_batch_size = static_cast<size_t>(opts->integer("incr-batch-size"));
  if (out.store.backend == "redis") {
    auto url = redis_cluster_url(cfg, "buffer.options");
    if (!url)
      return url.error();
    out.store.url = *url;
  }
  out.db_url = effective_db_url(cfg.get_string("db.url"),
                                cfg.get_string("node.data-dir"));
  out.db_options = make_sql_options(cfg.get_string("db.sqlite-synchronous"));
  out.broker_url = cfg.get_string("broker.url");
  return out;
}

namespace {

// What a worker thread keeps between buffer tasks.
struct flush_thread_state {
  std::unique_ptr<buffer_flusher> flusher;
  std::unique_ptr<broker> conn;
};

flush_thread_state& thread_state() {
  thread_local flush_thread_state st;
  return st;
}

caf::expected<buffer_flusher*> thread_flusher(const buffer_flush_options& opts) {
  auto& st = thread_state();
  if (!st.flusher) {
    auto f = buffer_flusher::open(opts);
    if (!f)
      return f.error();
    st.flusher = std::move(*f);
  }
  return st.flusher.get();
}

caf::expected<broker*> thread_broker(const buffer_flush_options& opts) {
  auto& st = thread_state();
  if (!st.conn) {
    auto b = connect_broker(opts.broker_url, std::chrono::seconds{5});
    if (!b)
      return b.error();
    st.conn = std::move(*b);
  }
  return st.conn.get();
}

// A failed connection is opened again by the next task. Logged (once a
// minute per worker thread): a database that is down otherwise shows
// only as counters that stop moving.
task_result retry_later(std::string what, const caf::error& err) {
  thread_state() = flush_thread_state{};
  thread_local std::chrono::steady_clock::time_point last_log{};
  auto now = std::chrono::steady_clock::now();
  if (last_log == std::chrono::steady_clock::time_point{}
      || now - last_log >= std::chrono::minutes{1}) {
    last_log = now;
    spdlog::warn("buffer flush: {} failed; the increments wait in the "
                 "buffer store and are applied by a later flush: {}",
                 what, error_text(err));
  }
  return task_result::retry_after(10, what + ": " + error_text(err));
}

outgoing_task buffer_task(std::string_view name, const std::string& queue,
                          value_map kwargs) {
  return make_internal_task(name, queue, std::move(kwargs), "vigil@buffer");
}

} // namespace

void register_buffer_tasks(task_registry& reg, buffer_flush_options opts) {
  auto shared = std::make_shared<const buffer_flush_options>(std::move(opts));

  task_schema pending;
  pending.name = std::string{process_pending_task};
  pending.queue = "buffers.process_pending";
  pending.params = {optional("partition", param_type::any, nullptr)};
  pending.var_kwargs = true;
  pending.max_retries = 0;
  reg.add(pending, [shared](const task_context& ctx) {
    const auto& o = *shared;
    auto partition = ctx.args.get("partition");
    std::vector<outgoing_task> out;
    if (partition.is_nil() && o.store.partitions > 1) {
      // Sentry fans out one process_pending per partition.
      for (int p = 0; p < o.store.partitions; ++p)
        out.push_back(buffer_task(process_pending_task,
                                  "buffers.process_pending",
                                  value_map{{"partition", int64_t{p}}}));
    } else {
      auto f = thread_flusher(o);
      if (!f)
        return retry_later("buffer store or database", f.error());
      if (auto r = (*f)->recover(); !r)
        return retry_later("re-applying takes", r.error());
      int p = partition.is_int() ? static_cast<int>(partition.as_int()) : 0;
      if (p < 0 || p >= std::max(1, o.store.partitions))
        return task_result::failure(
          "ValueError", "partition " + std::to_string(p) + " out of range");
      bool locked_out = false;
      auto batches = (*f)->pending_batches(p, locked_out);
      if (!batches)
        return retry_later("reading the pending rows", batches.error());
      if (locked_out) {
        spdlog::info("process_pending: another process holds the pending "
                     "lock of partition {}; skipped",
                     p);
        return task_result::success(int64_t{0});
      }
      for (auto& keys : *batches) {
        value_array ks;
        for (auto& k : keys)
          ks.emplace_back(std::move(k));
        out.push_back(buffer_task(process_incr_task, o.incr_queue,
                                  value_map{{"batch_keys", std::move(ks)}}));
      }
    }
    if (out.empty())
      return task_result::success(int64_t{0});
    auto b = thread_broker(o);
    if (!b)
      return retry_later("broker", b.error());
    if (auto err = (*b)->publish(out))
      return retry_later("sending process_incr tasks", err);
    return task_result::success(static_cast<int64_t>(out.size()));
  });

  task_schema incr;
  incr.name = std::string{process_incr_task};
  incr.queue = shared->incr_queue;
  incr.params = {optional("batch_keys", param_type::any, nullptr),
                 optional("key", param_type::any, nullptr)};
  // Older Sentry sent model/columns/filters/extra here (the pass-through
  // buffer): tolerated, set aside.
  incr.var_kwargs = true;
  // SQL down: retried every 10 s for a good while before dead-lettering;
  // the sums wait in the store meanwhile.
  incr.max_retries = 360;
  reg.add(incr, [shared](const task_context& ctx) {
    std::vector<std::string> keys;
    auto add_key = [&](const value& v) {
      if (v.is_text())
        keys.push_back(v.as_text());
    };
    if (const auto& batch = ctx.args.get("batch_keys"); batch.is_array())
      for (const auto& k : batch.as_array())
        add_key(k);
    add_key(ctx.args.get("key"));
    if (keys.empty())
      return task_result::success(int64_t{0});
    auto f = thread_flusher(*shared);
    if (!f)
      return retry_later("buffer store or database", f.error());
    auto r = (*f)->apply_rows(keys);
    if (!r)
      return retry_later("applying buffered rows", r.error());
    if (r->applied.dropped > 0)
      spdlog::warn("process_incr: {} row(s) dropped: their SQL row is gone "
                   "and cannot be created from the buffer",
                   r->applied.dropped);
    return task_result::success(static_cast<int64_t>(r->rows));
  });
}

} // namespace vigil
