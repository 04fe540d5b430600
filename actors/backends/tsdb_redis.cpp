// Sentry's RedisTSDB: counters in hashes `ts:{model}:{bucket}:{vnode}`
// (HINCRBY, EXPIREAT to the bucket's end plus the rollup's span), distinct
// counts in HyperLogLogs `ts:{model}:{bucket}:{key}` (PFADD, PFCOUNT), key
// names from messages/tsdb_keys. Every call is one pipelined round trip.

#include <map>
#include <unordered_map>

#include "actors/backends/tsdb.hpp"
#include "adapters/redis_session.hpp"
#include "messages/errors.hpp"

namespace vigil {

namespace {

caf::error failed_reply(const redis_value& r, std::string_view what) {
  return caf::make_error(errc::command_failed,
                         std::string{what} + ": " + r.error_text());
}

class redis_tsdb final : public tsdb_backend {
public:
  redis_tsdb(const tsdb_backend_options& o, redis_endpoint ep)
    : rollups_(o.rollups), session_(std::move(ep), o.timeout) {
  }

  std::string describe() const override {
    return "redis tsdb " + session_.describe();
  }

  caf::error incr_multi(const std::vector<tsdb_incr>& items) override {
    // Sentry aggregates per (hash, field) before writing: one HINCRBY per
    // counter, one EXPIREAT per hash, whatever the number of items.
    std::map<std::pair<std::string, std::string>, int64_t> sums;
    std::unordered_map<std::string, int64_t> expiry;
    for (const auto& item : items)
      for (const auto& r : rollups_)
        for (auto env : tsdb_environments(item.environment_id)) {
          auto k = make_tsdb_counter_key(item.model, r.seconds,
                                         item.timestamp, item.key, env);
          auto& e = expiry[k.hash];
          e = std::max(e, tsdb_expiry(r, item.timestamp));
          sums[{std::move(k.hash), std::move(k.field)}] += item.count;
        }
    if (sums.empty())
      return {};
    auto conn = session_.get();
    if (!conn)
      return conn.error();
    std::vector<std::string> numbers;
    numbers.reserve(sums.size() + expiry.size());
    for (const auto& [hf, n] : sums) {
      numbers.push_back(std::to_string(n));
      (*conn)->append({"HINCRBY", hf.first, hf.second, numbers.back()});
    }
    for (const auto& [hash, at] : expiry) {
      numbers.push_back(std::to_string(at));
      (*conn)->append({"EXPIREAT", hash, numbers.back()});
    }
    return check(session_.flush(), "tsdb incr");
  }

  caf::expected<std::vector<std::vector<tsdb_point>>>
  get_range(tsdb_model model, const std::vector<tsdb_key>& keys,
            const tsdb_range& range) override {
    return each_bucket(keys, range, [&](redis_connection& c,
                                        const tsdb_key& key, int64_t ts) {
      auto k = make_tsdb_counter_key(model, range.rollup, ts, key,
                                     range.environment_id);
      c.append({"HGET", k.hash, k.field});
    });
  }

  caf::error record_multi(const std::vector<tsdb_record>& items) override {
    std::map<std::string, std::vector<const std::string*>> values;
    std::unordered_map<std::string, int64_t> expiry;
    for (const auto& item : items)
      for (const auto& r : rollups_)
        for (auto env : tsdb_environments(item.environment_id)) {
          auto key = make_tsdb_distinct_key(item.model, r.seconds,
                                            item.timestamp, item.key, env);
          auto& e = expiry[key];
          e = std::max(e, tsdb_expiry(r, item.timestamp));
          auto& v = values[key];
          for (const auto& x : item.values)
            v.push_back(&x);
        }
    if (values.empty())
      return {};
    auto conn = session_.get();
    if (!conn)
      return conn.error();
    std::vector<std::string> numbers;
    numbers.reserve(expiry.size());
    for (const auto& [key, vs] : values) {
      std::vector<std::string_view> argv{"PFADD", key};
      for (const auto* x : vs)
        argv.emplace_back(*x);
      (*conn)->append(argv);
      numbers.push_back(std::to_string(expiry[key]));
      (*conn)->append({"EXPIREAT", key, numbers.back()});
    }
    return check(session_.flush(), "tsdb record");
  }

  caf::expected<std::vector<std::vector<tsdb_point>>>
  get_distinct_counts_series(tsdb_model model,
                             const std::vector<tsdb_key>& keys,
                             const tsdb_range& range) override {
    return each_bucket(keys, range, [&](redis_connection& c,
                                        const tsdb_key& key, int64_t ts) {
      auto k = make_tsdb_distinct_key(model, range.rollup, ts, key,
                                      range.environment_id);
      c.append({"PFCOUNT", k});
    });
  }

  caf::expected<std::vector<int64_t>>
  get_distinct_counts_totals(tsdb_model model,
                             const std::vector<tsdb_key>& keys,
                             const tsdb_range& range) override {
    if (auto err = check_tsdb_rollup(rollups_, range.rollup))
      return err;
    auto buckets = tsdb_series(range.start, range.end, range.rollup);
    auto conn = session_.get();
    if (!conn)
      return conn.error();
    for (const auto& key : keys) {
      // PFCOUNT of several keys counts their union.
      std::vector<std::string> names;
      for (auto ts : buckets)
        names.push_back(make_tsdb_distinct_key(model, range.rollup, ts, key,
                                               range.environment_id));
      std::vector<std::string_view> argv{"PFCOUNT"};
      argv.insert(argv.end(), names.begin(), names.end());
      (*conn)->append(argv);
    }
    auto replies = session_.flush();
    if (!replies)
      return replies.error();
    std::vector<int64_t> out;
    for (const auto& r : *replies) {
      if (r.is_error())
        return failed_reply(r, "tsdb PFCOUNT");
      out.push_back(r.as_int());
    }
    return out;
  }

private:
  static caf::error
  check(const caf::expected<std::vector<redis_reply>>& replies,
        std::string_view what) {
    if (!replies)
      return replies.error();
    return check_replies(*replies, what);
  }

  /// One series per key: `ask(conn, key, bucket start)` appends the command
  /// whose reply is that bucket's figure (an integer, a number as text, or
  /// nil for 0); all of them in one round trip.
  template <class Ask>
  caf::expected<std::vector<std::vector<tsdb_point>>>
  each_bucket(const std::vector<tsdb_key>& keys, const tsdb_range& range,
              Ask ask) {
    if (auto err = check_tsdb_rollup(rollups_, range.rollup))
      return err;
    auto buckets = tsdb_series(range.start, range.end, range.rollup);
    auto conn = session_.get();
    if (!conn)
      return conn.error();
    for (const auto& key : keys)
      for (auto ts : buckets)
        ask(**conn, key, ts);
    auto replies = session_.flush();
    if (!replies)
      return replies.error();
    std::vector<std::vector<tsdb_point>> out;
    size_t i = 0;
    for (size_t k = 0; k < keys.size(); ++k) {
      auto& series = out.emplace_back();
      for (auto ts : buckets) {
        const auto& r = (*replies)[i++];
        if (r.is_error())
          return failed_reply(r, "tsdb read");
        int64_t n = r.is_integer() ? r.as_int()
                                   : std::atoll(std::string{r.as_string()}.c_str());
        series.emplace_back(ts, n);
      }
    }
    return out;
  }

  std::vector<tsdb_rollup> rollups_;
  redis_session session_;
};

} // namespace

caf::expected<std::unique_ptr<tsdb_backend>>
make_redis_tsdb(const tsdb_backend_options& o) {
  auto ep = parse_redis_url(o.url);
  if (!ep)
    return ep.error();
  return std::unique_ptr<tsdb_backend>{
    std::make_unique<redis_tsdb>(o, std::move(*ep))};
}

} // namespace vigil
