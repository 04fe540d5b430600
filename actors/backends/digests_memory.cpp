// The in-process digests store: what Redis keeps under namespace `d` (the
// two schedules, each timeline's records and snapshot, its last delivery
// time and its lock) kept in maps shared by every backend of one name in
// this process, behind a mutex, with the Redis script's steps, so the two
// backends pass one contract suite. Nothing expires here but locks: a
// timeline leaves the store when it is closed empty or deleted.

#include <algorithm>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <unordered_map>

#include "actors/backends/digests.hpp"
#include "actors/backends/named_store.hpp"
#include "messages/clock.hpp"
#include "messages/errors.hpp"

namespace vigil {

namespace {

using steady = std::chrono::steady_clock;

// A Redis sorted set: members ordered by (score, member).
class scored_set {
public:
  std::optional<double> score(const std::string& member) const {
    auto it = scores_.find(member);
    if (it == scores_.end())
      return std::nullopt;
    return it->second;
  }

  void put(const std::string& member, double score) {
    auto [it, fresh] = scores_.try_emplace(member, score);
    if (!fresh) {
      order_.erase({it->second, member});
      it->second = score;
    }
    order_.emplace(score, member);
  }

  void erase(const std::string& member) {
    auto it = scores_.find(member);
    if (it == scores_.end())
      return;
    order_.erase({it->second, member});
    scores_.erase(it);
  }

  size_t size() const {
    return scores_.size();
  }

  bool empty() const {
    return scores_.empty();
  }

  /// Members scored in [0, deadline], lowest first.
  std::vector<std::pair<double, std::string>> upto(double deadline) const {
    std::vector<std::pair<double, std::string>> out;
    for (auto it = order_.lower_bound({0.0, std::string{}});
         it != order_.end() && it->first <= deadline; ++it)
      out.push_back(*it);
    return out;
  }

  /// Members from the highest, as ZREVRANGE.
  auto newest_first() const {
    return std::vector<std::pair<double, std::string>>(order_.rbegin(),
                                                       order_.rend());
  }

  /// Removes all but the `keep` highest; returns the removed members.
  std::vector<std::string> trim(size_t keep) {
    std::vector<std::string> gone;
    while (order_.size() > keep) {
      auto it = order_.begin();
      gone.push_back(it->second);
      scores_.erase(it->second);
      order_.erase(it);
    }
    return gone;
  }

private:
  std::unordered_map<std::string, double> scores_;
  std::set<std::pair<double, std::string>> order_;
};

struct memory_timeline {
  scored_set records;
  scored_set digest;
  // Record values by id (Redis: `d:t:{key}:r:{id}`, shared by the
  // timeline and its snapshot).
  std::unordered_map<std::string, std::string> values;
  std::optional<double> last_delivery;
};

struct held_lock {
  std::string token;
  steady::time_point until;
};

struct digests_store {
  std::mutex mtx;
  std::unordered_map<std::string, memory_timeline> timelines;
  scored_set waiting;
  scored_set ready;
  std::unordered_map<std::string, held_lock> locks;
};

caf::error locked_error(const std::string& key) {
  return caf::make_error(errc::unavailable,
                         "digests: the digest of timeline " + key
                           + " is open elsewhere");
}

class memory_digests final : public digest_backend {
public:
  explicit memory_digests(const digest_backend_options& opts)
    : opts_(opts),
      chance_(opts.effective_truncation_chance()),
      store_(named_store<digests_store>(opts.url)),
      rng_(std::random_device{}()) {
  }

  std::string describe() const override {
    return "memory digests " + opts_.url;
  }

  caf::expected<bool> add(const digest_add& x, double now) override {
    std::lock_guard<std::mutex> guard{store_->mtx};
    return add_locked(x, now);
  }

  caf::expected<std::vector<bool>>
  add_many(const std::vector<digest_add>& xs, double now) override {
    std::vector<bool> out;
    out.reserve(xs.size());
    std::lock_guard<std::mutex> guard{store_->mtx};
    for (const auto& x : xs)
      out.push_back(add_locked(x, now));
    return out;
  }

  caf::expected<std::vector<digest_schedule_entry>>
  schedule(double deadline, double) override {
    std::vector<digest_schedule_entry> out;
    std::lock_guard<std::mutex> guard{store_->mtx};
    for (auto& [score, key] : store_->waiting.upto(deadline)) {
      store_->ready.put(key, score);
      store_->waiting.erase(key);
      out.push_back({std::move(key), score});
    }
    stats_.scheduled += out.size();
    return out;
  }

  caf::error maintenance(double deadline, double) override {
    std::lock_guard<std::mutex> guard{store_->mtx};
    for (auto& [score, key] : store_->ready.upto(deadline)) {
      store_->waiting.put(key, score);
      store_->ready.erase(key);
    }
    return {};
  }

  caf::expected<digest_lease>
  open_digest(const std::string& key, double minimum_delay, double) override {
    std::lock_guard<std::mutex> guard{store_->mtx};
    if (held_by_other(key, {})) {
      ++stats_.locked;
      return locked_error(key);
    }
    if (!store_->ready.score(key)) {
      ++stats_.not_ready;
      return caf::make_error(errc::not_found,
                             "digests: timeline " + key
                               + " is not in the ready state");
    }
    digest_lease lease;
    lease.key = key;
    lease.lock_token = new_uuid4();
    lease.minimum_delay = minimum_delay;
    store_->locks[key] = {lease.lock_token, steady::now() + opts_.lock_ttl};
    auto& t = store_->timelines[key];
    if (!t.records.empty()) {
      // Into the snapshot, the later score of a record in both (Redis:
      // RENAME, or ZUNIONSTORE ... AGGREGATE MAX and a trim).
      bool merged = !t.digest.empty();
      for (const auto& [score, id] : t.records.newest_first()) {
        auto old = t.digest.score(id);
        t.digest.put(id, old ? std::max(*old, score) : score);
      }
      t.records = scored_set{};
      if (merged && opts_.capacity > 0)
        for (const auto& id : t.digest.trim(opts_.capacity))
          t.values.erase(id);
    }
    for (const auto& [score, id] : t.digest.newest_first()) {
      if (auto v = t.values.find(id); v != t.values.end())
        lease.records.push_back({id, v->second, score});
      lease.ids.push_back(id);
    }
    forget_if_empty(key);
    ++stats_.opened;
    return lease;
  }

  caf::error close_digest(const digest_lease& lease, double now) override {
    std::lock_guard<std::mutex> guard{store_->mtx};
    const auto& key = lease.key;
    if (held_by_other(key, lease.lock_token))
      return locked_error(key);
    auto& t = store_->timelines[key];
    for (const auto& id : lease.ids) {
      t.digest.erase(id);
      t.values.erase(id);
    }
    store_->ready.erase(key);
    if (!lease.ids.empty() || !t.records.empty() || !t.digest.empty()) {
      t.last_delivery = now;
      store_->waiting.put(key, now + lease.minimum_delay);
    } else {
      t.last_delivery.reset();
      store_->waiting.erase(key);
    }
    if (auto it = store_->locks.find(key);
        it != store_->locks.end() && it->second.token == lease.lock_token)
      store_->locks.erase(it);
    forget_if_empty(key);
    ++stats_.closed;
    stats_.records_delivered += lease.records.size();
    return {};
  }

  caf::error release_digest(const digest_lease& lease) override {
    std::lock_guard<std::mutex> guard{store_->mtx};
    if (auto it = store_->locks.find(lease.key);
        it != store_->locks.end() && it->second.token == lease.lock_token)
      store_->locks.erase(it);
    return {};
  }

  caf::error delete_timeline(const std::string& key, double) override {
    std::lock_guard<std::mutex> guard{store_->mtx};
    if (held_by_other(key, {}))
      return locked_error(key);
    store_->timelines.erase(key);
    store_->ready.erase(key);
    store_->waiting.erase(key);
    return {};
  }

  digest_backend_stats stats() const override {
    return stats_;
  }

private:
  // Sentry's ADD, the store's mutex held.
  bool add_locked(const digest_add& x, double) {
    auto& t = store_->timelines[x.key];
    t.values[x.record.id] = x.record.value;
    t.records.put(x.record.id, x.record.timestamp);
    ++stats_.records_added;
    bool now_ready = false;
    if (!store_->ready.score(x.key)) {
      if (auto score = store_->waiting.score(x.key)) {
        auto update = t.last_delivery
                        ? std::min(*score + x.increment_delay,
                                   *t.last_delivery + x.maximum_delay)
                        : std::min(*score, x.record.timestamp);
        if (update != *score)
          store_->waiting.put(x.key, update);
      } else {
        store_->ready.put(x.key, x.record.timestamp);
        now_ready = true;
        ++stats_.ready_at_once;
      }
    }
    if (opts_.capacity > 0 && draw() < chance_)
      for (const auto& id : t.records.trim(opts_.capacity))
        t.values.erase(id);
    return now_ready;
  }

  double draw() {
    return std::uniform_real_distribution<double>{0.0, 1.0}(rng_);
  }

  // Whether a holder other than `token` has the lock of `key` (an expired
  // lock is free, as an expired Redis key).
  bool held_by_other(const std::string& key, const std::string& token) {
    auto it = store_->locks.find(key);
    if (it == store_->locks.end())
      return false;
    if (it->second.until <= steady::now()) {
      store_->locks.erase(it);
      return false;
    }
    return it->second.token != token;
  }

  // Drops a timeline that holds nothing, as Redis holds no key for it.
  void forget_if_empty(const std::string& key) {
    auto it = store_->timelines.find(key);
    if (it == store_->timelines.end())
      return;
    const auto& t = it->second;
    if (t.records.empty() && t.digest.empty() && !t.last_delivery)
      store_->timelines.erase(it);
  }

  digest_backend_options opts_;
  double chance_;
  std::shared_ptr<digests_store> store_;
  std::mt19937_64 rng_;
  digest_backend_stats stats_;
};

} // namespace

std::unique_ptr<digest_backend>
make_memory_digest_backend(const digest_backend_options& opts) {
  return std::make_unique<memory_digests>(opts);
}

} // namespace vigil
