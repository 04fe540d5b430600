#include "actors/metrics.hpp"

#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_map>

namespace vigil::metrics {

namespace {

using table = std::unordered_map<std::string, metric_point>;

/// One thread's aggregates. Its own thread locks it for each call (never
/// contended but at collection, once an interval).
struct shard {
  std::mutex mtx;
  table items;
};

void merge_into(table& into, table&& from) {
  for (auto& [k, p] : from) {
    auto [it, fresh] = into.try_emplace(k);
    if (fresh)
      it->second = std::move(p);
    else
      merge_point(it->second, p, max_samples);
  }
}

/// Every live thread's shard, and what exited threads left behind.
struct registry {
  std::mutex mtx;
  std::vector<std::shared_ptr<shard>> shards;
  table orphans;
  std::atomic<bool> on{false};
  std::atomic<double> rate{1};
  std::atomic<uint64_t> gauge_order{0};
  std::mutex page_mtx;
  std::shared_ptr<const exposition> page;
};

// Never destroyed: threads may record while the process exits.
registry& reg() {
  static auto* r = new registry;
  return *r;
}

/// The calling thread's shard: registered on first use, handed to the
/// orphans when the thread ends so that its last interval is not lost.
struct shard_handle {
  std::shared_ptr<shard> s = std::make_shared<shard>();
  std::minstd_rand rng;

  shard_handle() {
    auto seed = std::hash<std::thread::id>{}(std::this_thread::get_id())
                ^ static_cast<size_t>(
                  std::chrono::steady_clock::now().time_since_epoch().count());
    rng.seed(static_cast<std::minstd_rand::result_type>(seed | 1));
    std::lock_guard guard{reg().mtx};
    reg().shards.push_back(s);
  }

  ~shard_handle() {
    auto& r = reg();
    std::lock_guard guard{r.mtx};
    {
      std::lock_guard inner{s->mtx};
      merge_into(r.orphans, std::move(s->items));
    }
    std::erase(r.shards, s);
  }

  double random() {
    return static_cast<double>(rng() - rng.min())
           / (static_cast<double>(rng.max() - rng.min()) + 1);
  }
};

shard_handle& local() {
  thread_local shard_handle h;
  return h;
}

// The table key: kind, key, tags and rate, in bytes that cannot collide
// ('\0' and '\x1f' separate the parts).
void make_id(std::string& out, metric_kind kind, std::string_view key,
             const tags& t, double rate) {
  out.clear();
  out += static_cast<char>(kind);
  out += key;
  for (auto& x : t) {
    out += '\0';
    out += x.key;
    out += '\x1f';
    out += x.value;
  }
  char bytes[sizeof(double)];
  std::memcpy(bytes, &rate, sizeof(double));
  out += '\0';
  out.append(bytes, sizeof(double));
}

template <class F>
void record(metric_kind kind, std::string_view key, const tags& t,
            double rate, F&& update) {
  auto& r = reg();
  if (!r.on.load(std::memory_order_relaxed))
    return;
  auto& h = local();
  if (rate < 0)
    rate = r.rate.load(std::memory_order_relaxed);
  if (rate < 1 && !should_sample(rate, h.random()))
    return;
  // Reused: the id is built without allocating once it has grown.
  thread_local std::string id;
  make_id(id, kind, key, t, rate);
  std::lock_guard guard{h.s->mtx};
  auto it = h.s->items.find(id);
  if (it == h.s->items.end()) {
    metric_point p;
    p.kind = kind;
    p.key = std::string{key};
    for (auto& x : t)
      p.tags.emplace_back(std::string{x.key}, std::string{x.value});
    p.rate = rate;
    it = h.s->items.emplace(id, std::move(p)).first;
  }
  update(it->second, h);
}

} // namespace

void incr(std::string_view key, double amount, tags t, double rate) {
  record(metric_kind::counter, key, t, rate,
         [amount](metric_point& p, shard_handle&) { p.value += amount; });
}

void timing(std::string_view key, double milliseconds, tags t, double rate) {
  record(metric_kind::timing, key, t, rate,
         [milliseconds](metric_point& p, shard_handle& h) {
           observe(p, milliseconds, max_samples, h.random());
         });
}

void timings(std::string_view key, const std::vector<double>& milliseconds,
             tags t, double rate) {
  if (milliseconds.empty())
    return;
  record(metric_kind::timing, key, t, rate,
         [&milliseconds](metric_point& p, shard_handle& h) {
           for (auto x : milliseconds)
             observe(p, x, max_samples, h.random());
         });
}

void gauge(std::string_view key, double value, tags t) {
  record(metric_kind::gauge, key, t, 1,
         [value](metric_point& p, shard_handle&) {
           p.value = value;
           p.order = reg().gauge_order.fetch_add(1, std::memory_order_relaxed);
         });
}

void distribution(std::string_view key, double value, tags t, double rate) {
  record(metric_kind::distribution, key, t, rate,
         [value](metric_point& p, shard_handle& h) {
           observe(p, value, max_samples, h.random());
         });
}

void configure(bool on, double sample_rate) {
  auto& r = reg();
  r.rate.store(sample_rate);
  r.on.store(on);
  if (!on)
    collect();
}

bool enabled() {
  return reg().on.load(std::memory_order_relaxed);
}

std::vector<metric_point> collect() {
  auto& r = reg();
  table merged;
  {
    std::lock_guard guard{r.mtx};
    merged.swap(r.orphans);
    for (auto& s : r.shards) {
      table items;
      {
        std::lock_guard inner{s->mtx};
        items.swap(s->items);
      }
      merge_into(merged, std::move(items));
    }
  }
  std::vector<metric_point> out;
  out.reserve(merged.size());
  for (auto& [k, p] : merged)
    out.push_back(std::move(p));
  return out;
}

exposition::~exposition() {
  // nop
}

void publish_exposition(std::shared_ptr<const exposition> page) {
  auto& r = reg();
  std::lock_guard guard{r.page_mtx};
  r.page = std::move(page);
}

std::optional<std::string> prometheus_page() {
  std::shared_ptr<const exposition> page;
  {
    auto& r = reg();
    std::lock_guard guard{r.page_mtx};
    page = r.page;
  }
  if (!page)
    return std::nullopt;
  return page->render();
}

} // namespace vigil::metrics
