// Quotas in Redis with Relay's key layout: counters
// `quota:{id}{{org}}{subscope}:{slot}` and refunds `r:` + key, read and
// written by Lua so that every check is atomic.
//
// A batch of checks goes to Redis as "runs": consecutive identical checks
// (same counters, limits, quantity) of one group of checks that share
// counters. Checks that share no counter are independent, so only the order
// within such a group matters; identical checks in a row are decided
// together (the accepted ones are a prefix of the run: counters only grow),
// which makes the script's work per distinct counter, not per check. Every
// check still gets exactly the answer it would get alone.

#include <algorithm>
#include <charconv>
#include <optional>
#include <unordered_map>

#include <spdlog/spdlog.h>

#include "actors/backends/quota.hpp"
#include "actors/backends/quota_redis_scripts.hpp"
#include "adapters/redis.hpp"
#include "messages/errors.hpp"

namespace vigil {

namespace {

// Runs per EVALSHA: a bound on how long one script holds the server.
constexpr size_t max_runs_per_script = 4096;

int64_t to_int(std::string_view text) {
  int64_t x = 0;
  std::from_chars(text.data(), text.data() + text.size(), x);
  return x;
}

void append_int(std::string& out, int64_t x) {
  char buf[24];
  auto res = std::to_chars(buf, buf + sizeof(buf), x);
  out.append(buf, static_cast<size_t>(res.ptr - buf));
}

// Hash and equality that accept string views, so that lookups by a key
// built in a reused buffer allocate nothing.
struct key_hash {
  using is_transparent = void;
  size_t operator()(std::string_view x) const noexcept {
    return std::hash<std::string_view>{}(x);
  }
};

struct key_equal {
  using is_transparent = void;
  bool operator()(std::string_view x, std::string_view y) const noexcept {
    return x == y;
  }
};

// What names a counter, without building its key: the quota id, the scope,
// the organization, the subscope (project or key id, 0 for none) and the
// slot. `counter_ref` is the same with a borrowed id, for lookups that
// allocate nothing.
struct counter_ref {
  std::string_view id;
  uint64_t org = 0;
  uint64_t sub = 0;
  int64_t slot = 0;
};

struct counter_id {
  std::string id;
  uint64_t org = 0;
  uint64_t sub = 0;
  int64_t slot = 0;

  counter_ref ref() const {
    return {id, org, sub, slot};
  }
};

struct counter_hash {
  using is_transparent = void;
  size_t operator()(const counter_ref& x) const noexcept {
    auto h = std::hash<std::string_view>{}(x.id);
    for (auto v : {x.org, x.sub, static_cast<uint64_t>(x.slot)})
      h = (h ^ (v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2)))
          * 0xff51afd7ed558ccdULL;
    return h;
  }
  size_t operator()(const counter_id& x) const noexcept {
    return (*this)(x.ref());
  }
};

struct counter_equal {
  using is_transparent = void;
  static bool eq(const counter_ref& x, const counter_ref& y) noexcept {
    return x.org == y.org && x.sub == y.sub && x.slot == y.slot
           && x.id == y.id;
  }
  bool operator()(const counter_id& x, const counter_id& y) const noexcept {
    return eq(x.ref(), y.ref());
  }
  bool operator()(const counter_ref& x, const counter_id& y) const noexcept {
    return eq(x, y.ref());
  }
  bool operator()(const counter_id& x, const counter_ref& y) const noexcept {
    return eq(x.ref(), y);
  }
};

// The subscope of a counter key: project or key id, 0 for none.
uint64_t subscope(const quota_config& q, const quota_scoping& s) {
  if (q.scope == quota_scope::project)
    return s.project_id;
  if (q.scope == quota_scope::key)
    return s.key_id;
  return 0;
}

// What this backend remembers about one counter (one key and window).
struct counter_state {
  /// Unix seconds when the window ends.
  int64_t expiry = 0;
  /// Counted minus refunded is known to be at least this (-1: unknown);
  /// set when a script reports the counter exhausted.
  int64_t known_consumed = -1;
  /// The batch in which `index` is valid.
  uint64_t epoch = 0;
  /// 0-based index of the counter in that batch.
  uint32_t index = 0;
  /// The Redis key, built when the counter is first seen.
  std::string name;
};

struct global_entry {
  int64_t budget = 0;
  int64_t expiry = 0;
  bool exhausted = false;
};

// One quota of a run.
struct run_quota {
  uint32_t counter = 0; // batch index
  int64_t limit = -1;
  int64_t expiry = 0;
  const std::string* reason = nullptr;
  counter_state* state = nullptr;
};

// Identical checks in a row within one group of checks sharing counters.
struct run {
  uint32_t first_quota = 0; // into run_quotas_
  uint32_t quota_count = 0;
  int64_t quantity = 0;
  bool once = false;
  bool mergeable = true; // false if a counter appears twice in the check
  uint32_t count = 0;
  int32_t next = -1; // the next run of the same group
  // Filled from the reply.
  int64_t accepted = 0;
};

// Where a check's answer comes from.
struct item_ref {
  int32_t run = -1; // -1: decided without the script
  uint32_t ordinal = 0;
};

class redis_quota_backend : public quota_backend {
public:
  redis_quota_backend(const quota_backend_options& opts, redis_endpoint ep,
                      redis_connection conn)
    : opts_(opts), ep_(std::move(ep)), conn_(std::move(conn)),
      clock_(opts.clock ? opts.clock : quota_system_now) {
    batch_script_.source = quota_scripts::batch_lua;
    global_script_.source = quota_scripts::global_lua;
  }

  std::string describe() const override {
    return to_string(ep_);
  }

  quota_backend_stats stats() const override {
    return stats_;
  }

  caf::expected<std::vector<quota_decision>>
  check_batch(const std::vector<quota_check>& checks) override {
    if (auto err = ensure_connected())
      return err;
    auto now = clock_();
    if (now != last_prune_) {
      prune(now);
      last_prune_ = now;
    }
    ++epoch_;
    counters_.clear();
    parent_.clear();
    head_.clear();
    tail_.clear();
    runs_.clear();
    run_quotas_.clear();
    items_.assign(checks.size(), item_ref{});
    std::vector<quota_decision> out(checks.size());
    for (size_t i = 0; i < checks.size(); ++i)
      if (auto err = prepare(checks[i], out[i], items_[i], now))
        return err;
    if (runs_.empty())
      return out;
    // The runs of each group in order; groups one after the other.
    order_.clear();
    for (uint32_t c = 0; c < parent_.size(); ++c)
      if (parent_[c] == c)
        for (auto r = head_[c]; r >= 0; r = runs_[size_t(r)].next)
          order_.push_back(static_cast<uint32_t>(r));
    size_t chunks = 0;
    for (size_t b = 0; b < order_.size(); b += max_runs_per_script) {
      append_script(b, std::min(order_.size(), b + max_runs_per_script));
      ++chunks;
    }
    auto replies = conn_->flush();
    if (!replies)
      return fail(replies.error());
    stats_.scripts += chunks;
    stats_.runs += order_.size();
    size_t chunk = 0;
    for (size_t b = 0; b < order_.size(); b += max_runs_per_script, ++chunk) {
      auto e = std::min(order_.size(), b + max_runs_per_script);
      if (auto err = read_reply((*replies)[chunk], b, e, now))
        return err;
    }
    for (size_t i = 0; i < checks.size(); ++i) {
      auto& ref = items_[i];
      if (ref.run < 0)
        continue;
      auto& r = runs_[size_t(ref.run)];
      if (static_cast<int64_t>(ref.ordinal) < r.accepted)
        continue;
      for (uint32_t q = 0; q < r.quota_count; ++q) {
        auto& rq = run_quotas_[r.first_quota + q];
        if (flags_[r.first_quota + q] & 1)
          add_rejection(out[i], rq.expiry - now, *rq.reason);
      }
    }
    return out;
  }

  caf::error refund(const quota_scoping& scoping,
                    const std::vector<quota_config>& quotas,
                    int64_t quantity) override {
    if (auto err = ensure_connected())
      return err;
    auto now = clock_();
    size_t n = 0;
    for (auto& q : quotas) {
      if (q.id.empty() || q.window <= 0 || !quota_matches(q, scoping))
        continue;
      auto w = make_quota_window(q, scoping.organization_id, now);
      auto key = quota_counter_key(q, scoping, w.slot);
      counter_ref ref{q.id, scoping.organization_id, subscope(q, scoping),
                      w.slot};
      if (auto i = known_.find(ref); i != known_.end())
        i->second.known_consumed = -1;
      auto refund_key = quota_refund_key(key);
      auto qty = std::to_string(quantity);
      auto expiry = std::to_string(w.expiry + quota_grace_secs);
      conn_->append({"INCRBY", refund_key, qty});
      conn_->append({"EXPIREAT", refund_key, expiry});
      n += 2;
    }
    if (n == 0)
      return {};
    auto replies = conn_->flush();
    if (!replies)
      return fail(replies.error());
    return check_replies(*replies, "refund");
  }

  caf::expected<int64_t> get_usage(const quota_scoping& scoping,
                                   const quota_config& q) override {
    if (q.id.empty() || q.window <= 0)
      return int64_t{-1};
    if (auto err = ensure_connected())
      return err;
    auto w = make_quota_window(q, scoping.organization_id, clock_());
    auto key = quota_counter_key(q, scoping, w.slot);
    auto refund_key = quota_refund_key(key);
    conn_->append({"GET", key});
    conn_->append({"GET", refund_key});
    auto replies = conn_->flush();
    if (!replies)
      return fail(replies.error());
    auto& main = (*replies)[0];
    auto& ref = (*replies)[1];
    if (main.is_error() || ref.is_error())
      return caf::make_error(errc::command_failed, "usage: GET failed");
    if (main.is_nil())
      return int64_t{-1};
    return to_int(main.as_string()) - to_int(ref.as_string());
  }

private:
  // Decides what can be decided locally (reject-all quotas, exhausted
  // quotas, global quotas) and puts the rest of the check into a run.
  caf::error prepare(const quota_check& c, quota_decision& d, item_ref& ref,
                     int64_t now) {
    // Reject-all quotas answer without touching Redis (Relay).
    for (auto& q : c.quotas)
      if (q.limit == 0 && quota_matches(q, c.scoping))
        add_rejection(d, reject_all_secs, q.reason_code);
    if (!d.accepted)
      return {};
    scratch_.clear();
    globals_pending_.clear();
    for (auto& q : c.quotas) {
      if (q.limit == 0 || q.id.empty() || q.window <= 0
          || !quota_matches(q, c.scoping))
        continue;
      auto w = make_quota_window(q, c.scoping.organization_id, now);
      auto& st = lookup(q, c.scoping, w.slot, w.expiry);
      if (opts_.cache_exhausted && q.limit > 0 && st.known_consumed >= q.limit
          && st.expiry > now) {
        ++stats_.cache_hits;
        add_rejection(d, w.expiry - now, q.reason_code);
        continue;
      }
      if (q.scope == quota_scope::global && q.limit > 0) {
        globals_pending_.push_back({&q, w.expiry});
        continue;
      }
      scratch_.push_back({0, q.limit, w.expiry, &q.reason_code, &st});
    }
    for (size_t g = 0; g < globals_pending_.size() && d.accepted; ++g)
      if (auto err = take_global(c, *globals_pending_[g].first,
                                 globals_pending_[g].second, d, now))
        return err;
    globals_pending_.clear();
    if (!d.accepted || scratch_.empty())
      return {};
    // Counters get their batch index only when they go to the script.
    for (auto& rq : scratch_)
      rq.counter = counter_index(*rq.state);
    bool mergeable = true;
    auto root = find(scratch_[0].counter);
    for (size_t i = 1; i < scratch_.size(); ++i) {
      for (size_t j = 0; j < i; ++j)
        mergeable = mergeable && scratch_[j].counter != scratch_[i].counter;
      root = unite(root, find(scratch_[i].counter));
    }
    auto tail = tail_[root];
    if (tail >= 0 && mergeable && same_run(runs_[size_t(tail)], c)) {
      auto& r = runs_[size_t(tail)];
      ref = {tail, r.count++};
      return {};
    }
    run r;
    r.first_quota = static_cast<uint32_t>(run_quotas_.size());
    r.quota_count = static_cast<uint32_t>(scratch_.size());
    r.quantity = c.quantity;
    r.once = c.over_accept_once;
    r.mergeable = mergeable;
    r.count = 1;
    run_quotas_.insert(run_quotas_.end(), scratch_.begin(), scratch_.end());
    auto idx = static_cast<int32_t>(runs_.size());
    runs_.push_back(r);
    if (tail >= 0)
      runs_[size_t(tail)].next = idx;
    else
      head_[root] = idx;
    tail_[root] = idx;
    ref = {idx, 0};
    return {};
  }

  // True if a check with the quotas in `scratch_` continues run `r`.
  bool same_run(const run& r, const quota_check& c) const {
    if (!r.mergeable || r.quantity != c.quantity
        || r.once != c.over_accept_once || r.quota_count != scratch_.size())
      return false;
    for (size_t q = 0; q < scratch_.size(); ++q) {
      auto& x = run_quotas_[r.first_quota + q];
      auto& y = scratch_[q];
      if (x.counter != y.counter || x.limit != y.limit || x.expiry != y.expiry
          || (x.reason != y.reason && *x.reason != *y.reason))
        return false;
    }
    return true;
  }

  // Builds the counter key of `q` in `key_` (no allocation once warm).
  void counter_key(const quota_config& q, const quota_scoping& s,
                   int64_t slot) {
    key_.clear();
    key_ += "quota:";
    key_ += q.id;
    key_ += '{';
    append_int(key_, static_cast<int64_t>(s.organization_id));
    key_ += '}';
    if (q.scope == quota_scope::project)
      append_int(key_, static_cast<int64_t>(s.project_id));
    else if (q.scope == quota_scope::key && s.key_id != 0)
      append_int(key_, static_cast<int64_t>(s.key_id));
    key_ += ':';
    append_int(key_, slot);
  }

  // The state of the counter of `q` for `s` in `slot`.
  counter_state& lookup(const quota_config& q, const quota_scoping& s,
                        int64_t slot, int64_t expiry) {
    counter_ref ref{q.id, s.organization_id, subscope(q, s), slot};
    auto i = known_.find(ref);
    if (i == known_.end()) {
      i = known_.emplace(counter_id{q.id, ref.org, ref.sub, slot},
                         counter_state{})
            .first;
      counter_key(q, s, slot);
      i->second.name = key_;
    }
    auto& st = i->second;
    if (st.expiry != expiry) {
      st.expiry = expiry;
      st.known_consumed = -1;
    }
    return st;
  }

  uint32_t counter_index(counter_state& st) {
    if (st.epoch == epoch_)
      return st.index;
    st.epoch = epoch_;
    st.index = static_cast<uint32_t>(counters_.size());
    counters_.push_back(&st);
    parent_.push_back(st.index);
    head_.push_back(-1);
    tail_.push_back(-1);
    return st.index;
  }

  uint32_t find(uint32_t x) {
    while (parent_[x] != x) {
      parent_[x] = parent_[parent_[x]];
      x = parent_[x];
    }
    return x;
  }

  // Joins two groups; the runs of `b` follow those of `a` (they share no
  // counter, so their relative order does not matter).
  uint32_t unite(uint32_t a, uint32_t b) {
    if (a == b)
      return a;
    parent_[b] = a;
    if (head_[b] >= 0) {
      if (tail_[a] >= 0)
        runs_[size_t(tail_[a])].next = head_[b];
      else
        head_[a] = head_[b];
      tail_[a] = tail_[b];
    }
    head_[b] = tail_[b] = -1;
    return a;
  }

  // Queues one EVALSHA for the runs order_[b, e).
  void append_script(size_t b, size_t e) {
    keys_.clear();
    local_.assign(counters_.size(), 0);
    // Number the counters of these runs in KEYS order first: the counter
    // expiries come before the runs in ARGV.
    for (size_t k = b; k < e; ++k) {
      auto& r = runs_[order_[k]];
      for (uint32_t q = 0; q < r.quota_count; ++q) {
        auto& rq = run_quotas_[r.first_quota + q];
        auto& local = local_[rq.counter];
        if (local == 0) {
          keys_.push_back(rq.counter);
          local = static_cast<uint32_t>(keys_.size());
        }
      }
    }
    args_.clear();
    ends_.clear();
    auto arg = [this](int64_t x) {
      append_int(args_, x);
      ends_.push_back(args_.size());
    };
    for (auto c : keys_)
      arg(counters_[c]->expiry + quota_grace_secs);
    arg(static_cast<int64_t>(e - b));
    for (size_t k = b; k < e; ++k) {
      auto& r = runs_[order_[k]];
      arg(r.count);
      arg(r.quota_count);
      arg(r.quantity);
      arg(r.once ? 1 : 0);
      for (uint32_t q = 0; q < r.quota_count; ++q) {
        auto& rq = run_quotas_[r.first_quota + q];
        arg(local_[rq.counter]);
        arg(rq.limit);
      }
    }
    // Key names: counter and refund key per counter, in one buffer.
    key_buf_.clear();
    key_ends_.clear();
    for (auto c : keys_) {
      auto& name = counters_[c]->name;
      key_buf_ += name;
      key_ends_.push_back(key_buf_.size());
      key_buf_ += "r:";
      key_buf_ += name;
      key_ends_.push_back(key_buf_.size());
    }
    key_views_.clear();
    size_t begin = 0;
    for (auto end : key_ends_) {
      key_views_.emplace_back(key_buf_.data() + begin, end - begin);
      begin = end;
    }
    arg_views_.clear();
    begin = 0;
    for (auto end : ends_) {
      arg_views_.emplace_back(args_.data() + begin, end - begin);
      begin = end;
    }
    conn_->append_eval(batch_script_, key_views_, arg_views_);
  }

  caf::error read_reply(const redis_value& reply, size_t b, size_t e,
                        int64_t now) {
    if (!reply.is_string())
      return caf::make_error(errc::command_failed,
                             "quota script: " + reply.error_text());
    flags_.resize(run_quotas_.size());
    auto text = reply.as_string();
    const char* pos = text.data();
    const char* end = text.data() + text.size();
    auto next = [&](int64_t& x) {
      while (pos < end && *pos == ' ')
        ++pos;
      auto res = std::from_chars(pos, end, x);
      if (res.ec != std::errc{})
        return false;
      pos = res.ptr;
      return true;
    };
    for (size_t k = b; k < e; ++k) {
      auto& r = runs_[order_[k]];
      if (!next(r.accepted))
        return caf::make_error(errc::command_failed,
                               "quota script: short reply");
      for (uint32_t q = 0; q < r.quota_count; ++q) {
        int64_t flag = 0;
        if (!next(flag))
          return caf::make_error(errc::command_failed,
                                 "quota script: short reply");
        auto i = r.first_quota + q;
        flags_[i] = static_cast<uint8_t>(flag);
        auto& rq = run_quotas_[i];
        if ((flag & 2) && opts_.cache_exhausted && rq.expiry > now)
          rq.state->known_consumed
            = std::max(rq.state->known_consumed, rq.limit);
      }
    }
    return {};
  }

  caf::error ensure_connected() {
    if (conn_ && conn_->ok())
      return {};
    auto now = std::chrono::steady_clock::now();
    // A stopped server refuses at once, a hung one costs a timeout: retry
    // at most every 200 ms.
    if (now - last_connect_ < std::chrono::milliseconds{200})
      return caf::make_error(errc::connection_failed,
                             "redis " + to_string(ep_) + ": not connected");
    last_connect_ = now;
    auto conn = redis_connection::connect(ep_, opts_.timeout);
    if (!conn)
      return conn.error();
    if (auto err = conn->preload(batch_script_))
      return err;
    if (auto err = conn->preload(global_script_))
      return err;
    conn_ = std::move(*conn);
    // The store may have restarted empty: forget what we knew.
    known_.clear();
    globals_.clear();
    ++stats_.reconnects;
    return {};
  }

  caf::error fail(caf::error err) {
    if (conn_ && !conn_->ok())
      conn_.reset();
    return err;
  }

  void prune(int64_t now) {
    std::erase_if(known_, [now](auto& kv) { return kv.second.expiry <= now; });
    std::erase_if(globals_, [now](auto& kv) { return kv.second.expiry <= now; });
  }

  // Decides a global quota (limit > 0) of one check from the local budget,
  // topping it up from Redis when short (Relay's global_quota.lua).
  caf::error take_global(const quota_check& c, const quota_config& quota,
                         int64_t expiry, quota_decision& d, int64_t now) {
    auto w = make_quota_window(quota, c.scoping.organization_id, now);
    counter_key(quota, c.scoping, w.slot);
    auto i = globals_.find(std::string_view{key_});
    if (i == globals_.end())
      i = globals_.emplace(key_, global_entry{}).first;
    auto& g = i->second;
    g.expiry = expiry;
    auto need = c.quantity;
    if (!g.exhausted && g.budget < std::max<int64_t>(need, 1)) {
      auto chunk = std::max<int64_t>(quota.limit / 100, 1);
      auto want = std::max(need - g.budget, chunk);
      auto r = conn_->eval(global_script_, {key_},
                           {std::to_string(quota.limit),
                            std::to_string(expiry + quota_grace_secs),
                            std::to_string(want)});
      if (!r)
        return fail(r.error());
      if (!r->is_array() || r->size() != 2)
        return caf::make_error(errc::command_failed, "global quota script");
      g.budget += (*r)[0].as_int();
      if ((*r)[1].as_int() >= quota.limit)
        g.exhausted = g.budget < std::max<int64_t>(need, 1);
    }
    bool rejected = need == 0 || c.over_accept_once
                      ? g.exhausted && g.budget <= 0
                      : g.budget < need;
    if (rejected)
      add_rejection(d, expiry - now, quota.reason_code);
    else
      g.budget -= std::min(need, g.budget);
    return {};
  }

  quota_backend_options opts_;
  redis_endpoint ep_;
  std::optional<redis_connection> conn_;
  quota_clock clock_;
  redis_script batch_script_;
  redis_script global_script_;
  /// Counters seen in live windows, by key (exhausted ones are the cache).
  std::unordered_map<counter_id, counter_state, counter_hash, counter_equal>
    known_;
  std::unordered_map<std::string, global_entry, key_hash, key_equal> globals_;
  std::chrono::steady_clock::time_point last_connect_{};
  int64_t last_prune_ = 0;
  quota_backend_stats stats_;
  // Per batch, reused so that a warm backend allocates little per check.
  uint64_t epoch_ = 0;
  std::string key_;
  std::vector<counter_state*> counters_;
  std::vector<uint32_t> parent_;
  std::vector<int32_t> head_;
  std::vector<int32_t> tail_;
  std::vector<run> runs_;
  std::vector<run_quota> run_quotas_;
  std::vector<run_quota> scratch_;
  std::vector<std::pair<const quota_config*, int64_t>> globals_pending_;
  std::vector<item_ref> items_;
  std::vector<uint32_t> order_;
  std::vector<uint8_t> flags_;
  std::string args_;
  std::vector<size_t> ends_;
  std::vector<uint32_t> keys_;
  std::vector<uint32_t> local_;
  std::string key_buf_;
  std::vector<size_t> key_ends_;
  std::vector<std::string_view> key_views_;
  std::vector<std::string_view> arg_views_;
};

} // namespace

caf::expected<std::unique_ptr<quota_backend>>
make_redis_quota_backend(const quota_backend_options& opts) {
  auto ep = parse_redis_url(opts.url);
  if (!ep)
    return ep.error();
  auto conn = redis_connection::connect(*ep, opts.timeout);
  if (!conn)
    return conn.error();
  auto backend = std::make_unique<redis_quota_backend>(opts, *ep,
                                                       std::move(*conn));
  return std::unique_ptr<quota_backend>{std::move(backend)};
}

} // namespace vigil
