// The in-process quota store: the embedded default for a single node. It
// keeps the same counters and refunds as Redis under the same key names and
// decides exactly as the Redis script does, so both pass one contract suite.

#include <map>
#include <mutex>
#include <unordered_map>

#include "actors/backends/quota.hpp"

namespace vigil {

namespace {

struct counter {
  int64_t value = 0;
  int64_t refunded = 0;
  /// Unix seconds after which the counter is gone (EXPIREAT).
  int64_t expires = 0;
};

/// The counters of one memory store name, shared by every backend on it.
struct quota_store {
  std::mutex mtx;
  std::unordered_map<std::string, counter> counters;
  int64_t last_sweep = 0;
};

std::shared_ptr<quota_store> store_for(const std::string& name) {
  static std::mutex mtx;
  static std::map<std::string, std::shared_ptr<quota_store>> stores;
  std::lock_guard guard{mtx};
  auto& ptr = stores[name];
  if (!ptr)
    ptr = std::make_shared<quota_store>();
  return ptr;
}

class memory_quota_backend : public quota_backend {
public:
  explicit memory_quota_backend(const quota_backend_options& opts)
    : name_(opts.url), clock_(opts.clock ? opts.clock : quota_system_now),
      store_(store_for(opts.url)) {
    // nop
  }

  std::string describe() const override {
    return name_;
  }

  caf::expected<std::vector<quota_decision>>
  check_batch(const std::vector<quota_check>& checks) override {
    auto now = clock_();
    std::vector<quota_decision> out;
    out.reserve(checks.size());
    std::lock_guard guard{store_->mtx};
    sweep(now);
    std::vector<std::pair<counter*, int64_t>> hits; // counter, expiry
    for (auto& c : checks) {
      quota_decision d;
      auto quotas = active_quotas(c);
      // Reject-all quotas answer without touching the counters (Relay).
      for (auto* q : quotas)
        if (q->limit == 0)
          add_rejection(d, reject_all_secs, q->reason_code);
      if (!d.accepted) {
        out.push_back(std::move(d));
        continue;
      }
      hits.clear();
      for (auto* q : quotas) {
        auto w = make_quota_window(*q, c.scoping.organization_id, now);
        auto& ctr = lookup(quota_counter_key(*q, c.scoping, w.slot), now);
        hits.emplace_back(&ctr, w.expiry + quota_grace_secs);
        if (q->limit < 0)
          continue;
        auto consumed = ctr.value - ctr.refunded;
        bool rejected = c.quantity == 0 || c.over_accept_once
                          ? consumed >= q->limit
                          : consumed + c.quantity > q->limit;
        if (rejected)
          add_rejection(d, w.expiry - now, q->reason_code);
      }
      if (d.accepted && c.quantity > 0)
        for (auto& [ctr, expiry] : hits) {
          ctr->value += c.quantity;
          ctr->expires = expiry;
        }
      out.push_back(std::move(d));
    }
    return out;
  }

  caf::error refund(const quota_scoping& scoping,
                    const std::vector<quota_config>& quotas,
                    int64_t quantity) override {
    auto now = clock_();
    std::lock_guard guard{store_->mtx};
    for (auto& q : quotas) {
      if (q.id.empty() || q.window <= 0 || !quota_matches(q, scoping))
        continue;
      auto w = make_quota_window(q, scoping.organization_id, now);
      auto& ctr = lookup(quota_counter_key(q, scoping, w.slot), now);
      ctr.refunded += quantity;
      if (ctr.expires == 0)
        ctr.expires = w.expiry + quota_grace_secs;
    }
    return {};
  }

  caf::expected<int64_t> get_usage(const quota_scoping& scoping,
                                   const quota_config& q) override {
    if (q.id.empty() || q.window <= 0)
      return int64_t{-1};
    auto now = clock_();
    auto w = make_quota_window(q, scoping.organization_id, now);
    std::lock_guard guard{store_->mtx};
    auto i = store_->counters.find(quota_counter_key(q, scoping, w.slot));
    if (i == store_->counters.end() || i->second.expires <= now
        || i->second.value == 0)
      return int64_t{-1};
    return i->second.value - i->second.refunded;
  }

private:
  counter& lookup(const std::string& key, int64_t now) {
    auto& ctr = store_->counters[key];
    if (ctr.expires != 0 && ctr.expires <= now)
      ctr = counter{};
    return ctr;
  }

  // Drops expired counters now and then, as Redis would.
  void sweep(int64_t now) {
    if (now - store_->last_sweep < 60)
      return;
    store_->last_sweep = now;
    std::erase_if(store_->counters, [now](auto& kv) {
      return kv.second.expires != 0 && kv.second.expires <= now;
    });
  }

  std::string name_;
  quota_clock clock_;
  std::shared_ptr<quota_store> store_;
};

} // namespace

std::unique_ptr<quota_backend>
make_memory_quota_backend(const quota_backend_options& opts) {
  return std::make_unique<memory_quota_backend>(opts);
}

} // namespace vigil
