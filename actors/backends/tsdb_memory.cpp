// The in-process TSDB: the series RedisTSDB keeps, under the same key
// names (messages/tsdb_keys), in maps shared by every backend of one name
// in this process, each bucket dropped once its rollup's span has passed.
// Distinct counts use a HyperLogLog that answers as Redis's.

#include <map>
#include <mutex>
#include <unordered_map>

#include "actors/backends/named_store.hpp"
#include "actors/backends/hyperloglog.hpp"
#include "actors/backends/tsdb.hpp"
#include "messages/clock.hpp"
#include "messages/errors.hpp"

namespace vigil {

namespace {

struct counter_hash {
  int64_t expires_at = 0;
  std::unordered_map<std::string, int64_t> fields;
};

struct distinct_set {
  int64_t expires_at = 0;
  hyperloglog hll;
};

struct tsdb_store {
  std::mutex mtx;
  std::unordered_map<std::string, counter_hash> counters;
  std::unordered_map<std::string, distinct_set> distinct;
  uint64_t writes = 0;
};

// Sweeps expired buckets every this many writes, so that memory follows
// the rollups' spans without a timer.
constexpr uint64_t sweep_every = 4096;

template <class Map>
void sweep(Map& m, int64_t now) {
  for (auto it = m.begin(); it != m.end();)
    it = it->second.expires_at <= now ? m.erase(it) : std::next(it);
}

class memory_tsdb final : public tsdb_backend {
public:
  explicit memory_tsdb(const tsdb_backend_options& o)
    : url_(o.url), rollups_(o.rollups), clock_(o.clock),
      store_(named_store<tsdb_store>(o.url)) {
  }

  std::string describe() const override {
    return "memory tsdb " + url_;
  }

  caf::error incr_multi(const std::vector<tsdb_incr>& items) override {
    auto t = now();
    std::lock_guard<std::mutex> guard{store_->mtx};
    for (const auto& item : items)
      for (const auto& r : rollups_)
        for (auto env : tsdb_environments(item.environment_id)) {
          auto k = make_tsdb_counter_key(item.model, r.seconds,
                                         item.timestamp, item.key, env);
          auto& h = store_->counters[k.hash];
          h.expires_at = std::max(h.expires_at, tsdb_expiry(r, item.timestamp));
          h.fields[k.field] += item.count;
        }
    after_write(t, items.size());
    return {};
  }

  caf::expected<std::vector<std::vector<tsdb_point>>>
  get_range(tsdb_model model, const std::vector<tsdb_key>& keys,
            const tsdb_range& range) override {
    return each_bucket(keys, range, [&](const tsdb_key& key, int64_t ts,
                                        int64_t t) -> int64_t {
      auto k = make_tsdb_counter_key(model, range.rollup, ts, key,
                                     range.environment_id);
      auto h = store_->counters.find(k.hash);
      if (h == store_->counters.end() || h->second.expires_at <= t)
        return 0;
      auto f = h->second.fields.find(k.field);
      return f == h->second.fields.end() ? 0 : f->second;
    });
  }

  caf::error record_multi(const std::vector<tsdb_record>& items) override {
    auto t = now();
    std::lock_guard<std::mutex> guard{store_->mtx};
    for (const auto& item : items)
      for (const auto& r : rollups_)
        for (auto env : tsdb_environments(item.environment_id)) {
          auto key = make_tsdb_distinct_key(item.model, r.seconds,
                                            item.timestamp, item.key, env);
          auto& d = store_->distinct[key];
          d.expires_at = std::max(d.expires_at, tsdb_expiry(r, item.timestamp));
          for (const auto& v : item.values)
            d.hll.add(v);
        }
    after_write(t, items.size());
    return {};
  }

  caf::expected<std::vector<std::vector<tsdb_point>>>
  get_distinct_counts_series(tsdb_model model,
                             const std::vector<tsdb_key>& keys,
                             const tsdb_range& range) override {
    return each_bucket(keys, range, [&](const tsdb_key& key, int64_t ts,
                                        int64_t t) -> int64_t {
      const auto* d = find_distinct(model, range, ts, key, t);
      return d ? static_cast<int64_t>(d->hll.count()) : 0;
    });
  }

  caf::expected<std::vector<int64_t>>
  get_distinct_counts_totals(tsdb_model model,
                             const std::vector<tsdb_key>& keys,
                             const tsdb_range& range) override {
    if (auto err = check_tsdb_rollup(rollups_, range.rollup))
      return err;
    auto t = now();
    std::vector<int64_t> out;
    std::lock_guard<std::mutex> guard{store_->mtx};
    for (const auto& key : keys) {
      hyperloglog all; // PFCOUNT of several keys counts their union
      for (auto ts : tsdb_series(range.start, range.end, range.rollup))
        if (const auto* d = find_distinct(model, range, ts, key, t))
          all.merge(d->hll);
      out.push_back(static_cast<int64_t>(all.count()));
    }
    return out;
  }

private:
  /// One series per key: `figure(key, bucket start, now)` per bucket of
  /// the range, under the store's lock.
  template <class Figure>
  caf::expected<std::vector<std::vector<tsdb_point>>>
  each_bucket(const std::vector<tsdb_key>& keys, const tsdb_range& range,
              Figure figure) {
    if (auto err = check_tsdb_rollup(rollups_, range.rollup))
      return err;
    auto t = now();
    auto buckets = tsdb_series(range.start, range.end, range.rollup);
    std::vector<std::vector<tsdb_point>> out;
    std::lock_guard<std::mutex> guard{store_->mtx};
    for (const auto& key : keys) {
      auto& series = out.emplace_back();
      for (auto ts : buckets)
        series.emplace_back(ts, figure(key, ts, t));
    }
    return out;
  }

  int64_t now() const {
    return clock_ ? clock_() : now_unix_us() / 1000000;
  }

  const distinct_set* find_distinct(tsdb_model model, const tsdb_range& range,
                                    int64_t ts, const tsdb_key& key,
                                    int64_t t) const {
    auto name = make_tsdb_distinct_key(model, range.rollup, ts, key,
                                       range.environment_id);
    auto it = store_->distinct.find(name);
    if (it == store_->distinct.end() || it->second.expires_at <= t)
      return nullptr;
    return &it->second;
  }

  void after_write(int64_t t, size_t n) {
    auto before = store_->writes;
    store_->writes += n;
    if (before / sweep_every != store_->writes / sweep_every) {
      sweep(store_->counters, t);
      sweep(store_->distinct, t);
    }
  }

  std::string url_;
  std::vector<tsdb_rollup> rollups_;
  std::function<int64_t()> clock_;
  std::shared_ptr<tsdb_store> store_;
};

} // namespace

std::unique_ptr<tsdb_backend> make_memory_tsdb(const tsdb_backend_options& o) {
  return std::make_unique<memory_tsdb>(o);
}

} // namespace vigil
