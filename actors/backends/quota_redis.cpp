// Quotas in Redis with Relay's key layout: counters
// `quota:{id}{{org}}{subscope}:{slot}` and refunds `r:` + key, read and
// written by Lua so that every check is atomic. A whole batch of checks runs
// in one EVALSHA, item after item, exactly as if each were sent alone.

#include <charconv>
#include <optional>
#include <unordered_map>

#include <hiredis/hiredis.h>
#include <spdlog/spdlog.h>

#include "actors/backends/quota.hpp"
#include "messages/errors.hpp"
#include "runtime/adapters/redis.hpp"

namespace vigil {

namespace {

// KEYS: counter and refund key of each distinct counter (1-based index i:
// KEYS[2i-1], KEYS[2i]). ARGV: item count, then per item: quota count,
// quantity, over_accept_once (0/1), then per quota: key index, limit (-1 =
// unlimited), expiry (EXPIREAT). Per quota of each item the result is 0
// (passed), 1 (rejected), 2 (passed, now exhausted) or 3 (rejected,
// exhausted). The decision per item is Relay's is_rate_limited.lua; values
// read once per batch and increments applied once per key at the end.
constexpr const char* batch_lua = R"lua(
local val = {}
local inc = {}
local exp = {}
local function consumed(i)
  local v = val[i]
  if v == nil then
    v = (tonumber(redis.call('GET', KEYS[2 * i - 1])) or 0)
        - (tonumber(redis.call('GET', KEYS[2 * i])) or 0)
    val[i] = v
  end
  return v
end
local res = {}
local a = 2
for _ = 1, tonumber(ARGV[1]) do
  local nq = tonumber(ARGV[a])
  local qty = tonumber(ARGV[a + 1])
  local once = ARGV[a + 2] == '1'
  local base = a + 3
  local r0 = #res
  local any = false
  for q = 0, nq - 1 do
    local limit = tonumber(ARGV[base + 3 * q + 1])
    local flag = 0
    if limit >= 0 then
      local c = consumed(tonumber(ARGV[base + 3 * q]))
      local rej
      if qty == 0 or once then rej = c >= limit else rej = c + qty > limit end
      if rej then
        any = true
        if c >= limit then flag = 3 else flag = 1 end
      end
    end
    res[r0 + q + 1] = flag
  end
  if not any and qty > 0 then
    for q = 0, nq - 1 do
      local idx = tonumber(ARGV[base + 3 * q])
      local limit = tonumber(ARGV[base + 3 * q + 1])
      local c = consumed(idx) + qty
      val[idx] = c
      inc[idx] = (inc[idx] or 0) + qty
      exp[idx] = ARGV[base + 3 * q + 2]
      if limit >= 0 and c >= limit then res[r0 + q + 1] = 2 end
    end
  end
  a = base + 3 * nq
end
for idx, n in pairs(inc) do
  redis.call('INCRBY', KEYS[2 * idx - 1], n)
  redis.call('EXPIREAT', KEYS[2 * idx - 1], exp[idx])
end
return res
)lua";

// Relay's global_quota.lua: takes up to ARGV[3] of budget from the counter
// KEYS[1] (limit ARGV[1], expiry ARGV[2]); returns {taken, count}.
constexpr const char* global_lua = R"lua(
local limit = tonumber(ARGV[1])
local requested = tonumber(ARGV[3])
local count = tonumber(redis.call('GET', KEYS[1]) or 0)
if limit >= 0 and count >= limit then return {0, count} end
local budget = requested
if limit >= 0 then budget = math.min(limit - count, requested) end
redis.call('INCRBY', KEYS[1], budget)
if count == 0 then redis.call('EXPIREAT', KEYS[1], ARGV[2]) end
return {budget, count + budget}
)lua";

// Items per EVALSHA: a bound on how long one script holds the server.
constexpr size_t max_items_per_script = 4096;

int64_t to_int(std::string_view text) {
  int64_t x = 0;
  std::from_chars(text.data(), text.data() + text.size(), x);
  return x;
}

struct exhausted_entry {
  /// Counted minus refunded is at least this much.
  int64_t consumed = 0;
  /// Unix seconds when the window ends.
  int64_t expiry = 0;
};

struct global_entry {
  int64_t budget = 0;
  int64_t expiry = 0;
  bool exhausted = false;
};

class redis_quota_backend : public quota_backend {
public:
  redis_quota_backend(const quota_backend_options& opts, redis_endpoint ep,
                      redis_connection conn)
    : opts_(opts), ep_(std::move(ep)), conn_(std::move(conn)),
      clock_(opts.clock ? opts.clock : quota_system_now) {
    batch_script_.source = batch_lua;
    global_script_.source = global_lua;
  }

  std::string describe() const override {
    return to_string(ep_);
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
    std::vector<quota_decision> out(checks.size());
    // Per item sent to Redis: its index and the quotas in the script.
    struct sent_item {
      size_t index;
      std::vector<const quota_config*> quotas;
      std::vector<int64_t> expiries; // window ends, for retry_after
      std::vector<std::string> keys;
    };
    std::vector<sent_item> sent;
    sent.reserve(checks.size());
    for (size_t i = 0; i < checks.size(); ++i) {
      auto& c = checks[i];
      auto& d = out[i];
      auto quotas = active_quotas(c);
      for (auto* q : quotas)
        if (q->limit == 0)
          add_rejection(d, reject_all_secs, q->reason_code);
      if (!d.accepted)
        continue;
      sent_item item{i, {}, {}, {}};
      for (auto* q : quotas) {
        auto w = make_quota_window(*q, c.scoping.organization_id, now);
        auto key = quota_counter_key(*q, c.scoping, w.slot);
        if (q->limit >= 0 && opts_.cache_exhausted) {
          auto e = exhausted_.find(key);
          if (e != exhausted_.end() && e->second.expiry > now
              && e->second.consumed >= q->limit) {
            ++cache_hits_;
            add_rejection(d, w.expiry - now, q->reason_code);
            continue;
          }
        }
        item.quotas.push_back(q);
        item.expiries.push_back(w.expiry);
        item.keys.push_back(std::move(key));
      }
      if (!d.accepted)
        continue;
      // Global quotas spend budget taken from Redis in chunks.
      if (auto err = take_global(c, item.quotas, item.expiries, item.keys, d,
                                 now))
        return err;
      if (!d.accepted || item.quotas.empty())
        continue;
      sent.push_back(std::move(item));
    }
    // One EVALSHA per chunk of items, all chunks in one round trip.
    std::vector<std::pair<size_t, size_t>> chunks; // [begin, end) of `sent`
    for (size_t b = 0; b < sent.size(); b += max_items_per_script)
      chunks.emplace_back(b, std::min(sent.size(), b + max_items_per_script));
    for (auto [b, e] : chunks) {
      std::unordered_map<std::string_view, size_t> index;
      std::vector<std::string> keys;
      std::vector<std::string> args;
      args.reserve(1 + (e - b) * 6);
      args.push_back(std::to_string(e - b));
      for (size_t k = b; k < e; ++k) {
        auto& item = sent[k];
        auto& c = checks[item.index];
        args.push_back(std::to_string(item.quotas.size()));
        args.push_back(std::to_string(c.quantity));
        args.push_back(c.over_accept_once ? "1" : "0");
        for (size_t q = 0; q < item.quotas.size(); ++q) {
          auto [it, added] = index.emplace(item.keys[q], keys.size() / 2 + 1);
          if (added) {
            keys.push_back(item.keys[q]);
            keys.push_back(quota_refund_key(item.keys[q]));
          }
          args.push_back(std::to_string(it->second));
          args.push_back(std::to_string(item.quotas[q]->limit));
          args.push_back(
            std::to_string(item.expiries[q] + quota_grace_secs));
        }
      }
      std::vector<std::string_view> kv(keys.begin(), keys.end());
      std::vector<std::string_view> av(args.begin(), args.end());
      conn_->append_eval(batch_script_, kv, av);
    }
    if (chunks.empty())
      return out;
    auto replies = conn_->flush();
    if (!replies)
      return fail(replies.error());
    for (size_t ci = 0; ci < chunks.size(); ++ci) {
      auto* r = (*replies)[ci].get();
      auto [b, e] = chunks[ci];
      if (r->type != REDIS_REPLY_ARRAY)
        return caf::make_error(errc::command_failed,
                               "quota script: " + reply_error(r));
      size_t pos = 0;
      for (size_t k = b; k < e; ++k) {
        auto& item = sent[k];
        auto& d = out[item.index];
        for (size_t q = 0; q < item.quotas.size(); ++q, ++pos) {
          if (pos >= r->elements)
            return caf::make_error(errc::command_failed,
                                   "quota script: short reply");
          auto flag = r->element[pos]->integer;
          if (flag == 1 || flag == 3)
            add_rejection(d, item.expiries[q] - now,
                          item.quotas[q]->reason_code);
          if ((flag == 2 || flag == 3) && opts_.cache_exhausted)
            exhausted_[item.keys[q]]
              = exhausted_entry{item.quotas[q]->limit, item.expiries[q]};
        }
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
      exhausted_.erase(key);
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
    for (auto& r : *replies)
      if (r->type == REDIS_REPLY_ERROR)
        return caf::make_error(errc::command_failed,
                               "refund: " + reply_error(r.get()));
    return {};
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
    auto* main = (*replies)[0].get();
    auto* ref = (*replies)[1].get();
    if (main->type == REDIS_REPLY_ERROR || ref->type == REDIS_REPLY_ERROR)
      return caf::make_error(errc::command_failed, "usage: GET failed");
    if (main->type == REDIS_REPLY_NIL)
      return int64_t{-1};
    return to_int(reply_text(main)) - to_int(reply_text(ref));
  }

private:
  caf::error ensure_connected() {
    if (conn_ && conn_->ok())
      return {};
    auto now = std::chrono::steady_clock::now();
    // A stopped server refuses at once; still, retry at most every 200 ms.
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
    exhausted_.clear();
    globals_.clear();
    return {};
  }

  caf::error fail(caf::error err) {
    if (conn_ && !conn_->ok())
      conn_.reset();
    return err;
  }

  void prune(int64_t now) {
    std::erase_if(exhausted_,
                  [now](auto& kv) { return kv.second.expiry <= now; });
    std::erase_if(globals_, [now](auto& kv) { return kv.second.expiry <= now; });
  }

  // Decides the global quotas (limit > 0) of one check from the local
  // budget, topping it up from Redis when short; removes them from the
  // lists so that the batch script does not count them again.
  caf::error take_global(const quota_check& c,
                         std::vector<const quota_config*>& quotas,
                         std::vector<int64_t>& expiries,
                         std::vector<std::string>& keys, quota_decision& d,
                         int64_t now) {
    for (size_t q = 0; q < quotas.size();) {
      auto* quota = quotas[q];
      if (quota->scope != quota_scope::global || quota->limit <= 0) {
        ++q;
        continue;
      }
      auto& g = globals_[keys[q]];
      g.expiry = expiries[q];
      auto need = c.quantity;
      if (!g.exhausted && g.budget < std::max<int64_t>(need, 1)) {
        auto chunk = std::max<int64_t>(quota->limit / 100, 1);
        auto want = std::max(need - g.budget, chunk);
        auto r = conn_->eval(global_script_, {keys[q]},
                             {std::to_string(quota->limit),
                              std::to_string(expiries[q] + quota_grace_secs),
                              std::to_string(want)});
        if (!r)
          return fail(r.error());
        auto* reply = r->get();
        if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2)
          return caf::make_error(errc::command_failed, "global quota script");
        g.budget += reply->element[0]->integer;
        if (reply->element[1]->integer >= quota->limit)
          g.exhausted = g.budget < std::max<int64_t>(need, 1);
      }
      bool rejected = need == 0 || c.over_accept_once
                        ? g.exhausted && g.budget <= 0
                        : g.budget < need;
      if (rejected) {
        add_rejection(d, expiries[q] - now, quota->reason_code);
      } else {
        g.budget -= std::min(need, g.budget);
      }
      quotas.erase(quotas.begin() + static_cast<ptrdiff_t>(q));
      expiries.erase(expiries.begin() + static_cast<ptrdiff_t>(q));
      keys.erase(keys.begin() + static_cast<ptrdiff_t>(q));
    }
    return {};
  }

  quota_backend_options opts_;
  redis_endpoint ep_;
  std::optional<redis_connection> conn_;
  quota_clock clock_;
  redis_script batch_script_;
  redis_script global_script_;
  std::unordered_map<std::string, exhausted_entry> exhausted_;
  std::unordered_map<std::string, global_entry> globals_;
  std::chrono::steady_clock::time_point last_connect_{};
  int64_t last_prune_ = 0;
  uint64_t cache_hits_ = 0;
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
