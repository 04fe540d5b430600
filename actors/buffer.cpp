#include "actors/buffer.hpp"
#include "actors/metrics.hpp"

#include <algorithm>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "config/config.hpp"
#include "config/organizations.hpp"
#include "config/service_options.hpp"
#include "messages/clock.hpp"
#include "messages/errors.hpp"

namespace vigil {

namespace {

using self_ptr = buffer_actor::stateful_pointer<buffer_state>;

// What a held row costs beyond its key: the map node, its names and values.
size_t held_bytes(const std::string& key, const buffer_incr& x) {
  size_t n = key.size() + x.model.size() + 64;
  for (const auto& [column, amount] : x.columns)
    n += column.size() + sizeof(amount) + 32;
  for (const auto* fields : {&x.filters, &x.extra})
    for (const auto& [column, v] : *fields)
      n += column.size() + v.type.size() + v.text.size() + 48;
  return n;
}

constexpr auto max_retry_delay = std::chrono::seconds{5};

// The held map's key of a row: its model and filters as they are. The
// store's key (an md5 of the filters) is made once per row when it is
// written, not once per increment. Built into `key`, whose capacity is
// reused from one increment to the next.
void held_key(const buffer_incr& x, std::string& key) {
  key.assign(x.model);
  for (const auto& [column, v] : x.filters) {
    key += '\0';
    key += column;
    key += '\0';
    key += v.type;
    key += '\0';
    key += v.text;
  }
}

std::string held_key(const buffer_incr& x) {
  std::string key;
  held_key(x, key);
  return key;
}

// Sums `later` into `held` as buffer_incr::merge does, and returns what
// the row's cost grew by: only a column or extra value not held yet, or a
// longer value, makes it bigger (the usual merge adds nothing).
size_t merge_counting(buffer_incr& held, const buffer_incr& later) {
  size_t grew = 0;
  for (const auto& [column, amount] : later.columns) {
    auto [it, fresh] = held.columns.try_emplace(column, 0);
    it->second += amount;
    if (fresh)
      grew += column.size() + sizeof(amount) + 32;
  }
  for (const auto& [column, v] : later.extra) {
    auto it = held.extra.find(column);
    if (it == held.extra.end()) {
      held.extra.emplace(column, v);
      grew += column.size() + v.type.size() + v.text.size() + 48;
      continue;
    }
    auto before = it->second.type.size() + it->second.text.size();
    auto after = v.type.size() + v.text.size();
    if (after > before)
      grew += after - before;
    if (it->second.text != v.text || it->second.type != v.type)
      it->second = v;
  }
  held.signal_only = held.signal_only || later.signal_only;
  return grew;
}

void arm_window(self_ptr self, std::chrono::milliseconds delay) {
  auto& st = self->state;
  if (st.window_armed)
    return;
  st.window_armed = true;
  self->delayed_send(self, delay, poll_atom_v);
}

// Writes what is held in one store call. True when the store took it.
bool write_held(self_ptr self) {
  auto& st = self->state;
  st.write_scheduled = false;
  if (st.held.rows.empty())
    return true;
  std::vector<buffer_incr> batch;
  batch.reserve(st.held.rows.size());
  for (auto& [key, x] : st.held.rows)
    batch.push_back(std::move(x));
  auto waiting = std::move(st.held.waiting);
  // Cleared, not replaced: the map's buckets and the key's capacity serve
  // the next batch.
  st.held.rows.clear();
  st.held.bytes = 0;
  st.held.waiting.clear();
  caf::error err;
  if (!st.backend) {
    auto b = make_buffer_backend(st.opts.store);
    if (b)
      st.backend = std::move(*b);
    else
      err = b.error();
  }
  if (st.backend)
    err = st.backend->incr(batch, now_unix_us() / 1000000);
  if (!err) {
    st.failures = 0;
    ++st.writes;
    st.rows_written += batch.size();
    metrics::incr("buffer.incr", static_cast<double>(batch.size()));
    for (auto& rp : waiting)
      rp.deliver(true);
    return true;
  }
  // Held again (summed with nothing: no message ran meanwhile), retried
  // after a backoff; the bounds do not apply to what was already taken.
  for (auto& x : batch) {
    auto key = held_key(x);
    st.held.bytes += held_bytes(key, x);
    st.held.rows.emplace(std::move(key), std::move(x));
  }
  auto text = error_text(err);
  st.counters.fail(text);
  ++st.failures;
  auto now = std::chrono::steady_clock::now();
  if (now - st.last_warning >= std::chrono::minutes{1}) {
    st.last_warning = now;
    spdlog::warn("buffer: store {} failed, {} row(s) held and retried: {}",
                 st.backend ? st.backend->describe() : st.opts.store.backend,
                 st.held.rows.size(), text);
  }
  for (auto& rp : waiting)
    rp.deliver(false);
  auto delay = std::min<std::chrono::milliseconds>(
    st.opts.local_flush * (1 << std::min(st.failures, 6)), max_retry_delay);
  arm_window(self, std::max(delay, std::chrono::milliseconds{10}));
  return false;
}

// Holds `rows` (summing `increments` increments) for the next write, which
// answers the request. Rows added before a bound was hit are held and
// written; the caller learns that not all of them are.
caf::result<bool> accept(self_ptr self, std::vector<buffer_incr>& rows,
                         uint64_t increments) {
  auto& st = self->state;
  for (size_t i = 0; i < rows.size(); ++i)
    if (!st.held.add(std::move(rows[i]), st.opts.max_held_rows,
                     st.opts.max_held_bytes)) {
      ++st.refused;
      // One increment per row (a vector of them): those before are held.
      if (increments == rows.size())
        st.increments += i;
      return false;
    }
  st.increments += increments;
  st.held.waiting.push_back(self->make_response_promise<bool>());
  if (!st.write_scheduled) {
    // Queued behind what is in the mailbox: those join this write.
    st.write_scheduled = true;
    self->send(self, batch_atom_v);
  }
  return st.held.waiting.back();
}

} // namespace

bool buffer_held::add(buffer_incr x, size_t max_rows, size_t max_bytes) {
  held_key(x, scratch_key);
  auto it = rows.find(scratch_key);
  if (it != rows.end()) {
    // Bytes only grow here (a value shrinking is not given back until the
    // row is written): the bound stays a bound.
    bytes += merge_counting(it->second, x);
    return true;
  }
  auto cost = held_bytes(scratch_key, x);
  if (rows.size() >= max_rows || bytes + cost > max_bytes)
    return false;
  bytes += cost;
  rows.emplace(scratch_key, std::move(x));
  return true;
}

buffer_actor::behavior_type buffer_service(self_ptr self,
                                           buffer_service_options opts) {
  self->state.opts = std::move(opts);
  spdlog::info("buffer: backend {}, local flush {} ms",
               self->state.opts.store.backend == "memory"
                 ? std::string{"memory"}
                 : mask_url(self->state.opts.store.url),
               self->state.opts.local_flush.count());
  return {
    [=](incr_atom, std::vector<buffer_incr>& xs) -> caf::result<bool> {
      self->state.counters.processed += xs.size();
      return accept(self, xs, xs.size());
    },
    [=](incr_atom, buffer_batch& batch) -> caf::result<bool> {
      self->state.counters.processed += batch.increments;
      return accept(self, batch.rows, batch.increments);
    },
    [=](incr_atom, buffer_incr& x) {
      auto& st = self->state;
      ++st.counters.processed;
      if (!st.held.add(std::move(x), st.opts.max_held_rows,
                       st.opts.max_held_bytes)) {
        ++st.refused;
        return;
      }
      ++st.increments;
      arm_window(self, st.opts.local_flush);
    },
    [=](batch_atom) { write_held(self); },
    [=](poll_atom) {
      self->state.window_armed = false;
      write_held(self);
    },
    [=](flush_atom) { return write_held(self); },
    [=](status_atom) {
      auto& st = self->state;
      auto out = make_status(self, st.counters);
      out.extra["backend"] = st.backend ? st.backend->describe()
                                        : st.opts.store.backend;
      out.extra["increments"] = std::to_string(st.increments);
      out.extra["writes"] = std::to_string(st.writes);
      out.extra["rows_written"] = std::to_string(st.rows_written);
      out.extra["held_rows"] = std::to_string(st.held.rows.size());
      out.extra["held_bytes"] = std::to_string(st.held.bytes);
      out.extra["refused"] = std::to_string(st.refused);
      return out;
    },
  };
}

caf::expected<buffer_service_options>
make_buffer_service_options(const config& cfg) {
  buffer_service_options out;
  auto& store = out.store;
  store.backend = cfg.get_string("buffer.backend");
  auto opts = read_service_options(cfg, "buffer.options",
                                   buffer_option_fields());
  if (!opts)
    return opts.error();
  store.partitions = static_cast<int>(opts->integer("pending-partitions"));
  out.local_flush = std::chrono::milliseconds{opts->integer("local-flush-ms")};
  if (store.backend == "redis") {
    auto url = redis_cluster_url(cfg, "buffer.options");
    if (!url)
      return url.error();
    store.url = *url;
  }
  return out;
}

} // namespace vigil
