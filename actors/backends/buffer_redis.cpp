// Sentry's RedisBuffer layout (messages/buffer_keys): a hash per row,
// `b:k:{model}:{md5(filters)}` with fields m, f, i+<column>, e+<column>
// and s, expiring an hour after its last increment, and the pending sets
// `b:p[:{partition}]` scored by time. A batch of increments is one MULTI.
//
// Beyond Sentry, a take renames the row's hash to `b:t:{take id}` (indexed
// in the sorted set `b:t`) in one Lua script instead of deleting it, so
// that the sums outlive a flush that dies before its SQL commit; `finish`
// deletes them once the SQL apply (which records the take id) committed.

#include <map>

#include "actors/backends/buffer.hpp"
#include "actors/backends/buffer_sql.hpp"
#include "adapters/redis_lock.hpp"
#include "adapters/redis_session.hpp"
#include "messages/clock.hpp"
#include "messages/errors.hpp"

namespace vigil {

namespace {

// KEYS: row key, its pending set, the take index, the take key.
// ARGV: now, the row key (kept in the take as field "k").
// Returns the take's fields, or nil when the row is gone.
constexpr std::string_view take_script_source = R"lua(
redis.call('ZREM', KEYS[2], KEYS[1])
if redis.call('EXISTS', KEYS[1]) == 0 then
  return false
end
redis.call('RENAME', KEYS[1], KEYS[4])
redis.call('PERSIST', KEYS[4])
redis.call('HSET', KEYS[4], 'k', ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[1], KEYS[4])
return redis.call('HGETALL', KEYS[4])
)lua";

constexpr std::string_view take_index_key = "b:t";

std::string take_key(std::string_view take_id) {
  return "b:t:" + std::string{take_id};
}

caf::error bad(std::string text) {
  return caf::make_error(errc::malformed, std::move(text));
}

// The model of a row key "b:k:{model}:{md5}".
std::string model_of(std::string_view row_key) {
  if (!row_key.starts_with("b:k:"))
    return {};
  auto rest = row_key.substr(4);
  auto colon = rest.rfind(':');
  return colon == std::string_view::npos ? std::string{}
                                         : std::string{rest.substr(0, colon)};
}

// Reads a take's hash (HGETALL's flat field/value array).
caf::expected<buffer_take> parse_take(const redis_value& fields,
                                      std::string take_id) {
  buffer_take t;
  t.take_id = std::move(take_id);
  for (size_t i = 0; i + 1 < fields.size(); i += 2) {
    auto name = fields[i].as_string();
    auto value = fields[i + 1].as_string();
    if (name == "k") {
      t.row_key = std::string{value};
    } else if (name == buffer_filters_field) {
      auto f = decode_buffer_fields(value);
      if (!f)
        return f.error();
      t.sums.filters = std::move(*f);
    } else if (name == buffer_signal_only_field) {
      t.sums.signal_only = value == "1";
    } else if (name.starts_with("i+")) {
      t.sums.columns[std::string{name.substr(2)}] =
        std::atoll(std::string{value}.c_str());
    } else if (name.starts_with("e+")) {
      auto v = decode_buffer_value(value);
      if (!v)
        return v.error();
      t.sums.extra[std::string{name.substr(2)}] = std::move(*v);
    }
  }
  t.sums.model = model_of(t.row_key);
  if (t.sums.model.empty())
    return bad("buffer take " + t.take_id + ": no row key");
  return t;
}

class redis_buffer final : public buffer_backend {
public:
  redis_buffer(const buffer_backend_options& o, redis_endpoint ep)
    : partitions_(o.partitions < 1 ? 1 : o.partitions),
      session_(std::move(ep), o.timeout),
      take_script_{std::string{take_script_source}} {
  }

  std::string describe() const override {
    return "redis buffer " + session_.describe();
  }

  caf::error incr(const std::vector<buffer_incr>& batch,
                  int64_t now) override {
    // Sum increments of one row first: one HINCRBY per row and column.
    std::map<std::string, buffer_incr> rows;
    for (const auto& inc : batch) {
      auto key = buffer_row_key(inc.model, inc.filters);
      auto [it, fresh] = rows.try_emplace(std::move(key), inc);
      if (!fresh)
        it->second.merge(inc);
    }
    if (rows.empty())
      return {};
    auto conn = session_.get();
    if (!conn)
      return conn.error();
    auto& c = **conn;
    std::vector<std::string> texts; // keeps appended arguments alive
    texts.reserve(rows.size() * 8);
    auto keep = [&](std::string s) -> std::string_view {
      texts.push_back(std::move(s));
      return texts.back();
    };
    auto now_text = keep(std::to_string(now));
    auto expire = keep(std::to_string(buffer_key_expire_secs));
    c.append({"MULTI"});
    for (const auto& [key, inc] : rows) {
      const auto* m = find_buffer_model(inc.model);
      if (m == nullptr)
        return bad("buffer: unknown model '" + inc.model + "'");
      c.append({"HSETNX", key, buffer_model_field, m->class_path});
      c.append({"HSETNX", key, buffer_filters_field,
                keep(encode_buffer_fields(inc.filters))});
      for (const auto& [column, amount] : inc.columns)
        c.append({"HINCRBY", key, keep(buffer_counter_field(column)),
                  keep(std::to_string(amount))});
      for (const auto& [column, value] : inc.extra)
        c.append({"HSET", key, keep(buffer_extra_field(column)),
                  keep(encode_buffer_value(value))});
      if (inc.signal_only)
        c.append({"HSET", key, buffer_signal_only_field, "1"});
      c.append({"EXPIRE", key, expire});
      c.append({"ZADD", keep(buffer_pending_key(key, partitions_)), now_text,
                key});
    }
    c.append({"EXEC"});
    auto replies = session_.flush();
    if (!replies)
      return replies.error();
    // EXEC's reply is nil when the transaction was aborted, else the array
    // of its commands' replies.
    const auto& exec = replies->back();
    if (!exec.is_array())
      return caf::make_error(errc::command_failed,
                             "buffer incr: MULTI failed: " + exec.error_text());
    for (const auto& r : exec.elements())
      if (r.is_error())
        return caf::make_error(errc::command_failed,
                               "buffer incr: " + r.error_text());
    stats_.increments += batch.size();
    stats_.row_writes += rows.size();
    return {};
  }

  caf::expected<std::map<std::string, int64_t>>
  get(const std::string& model, const std::vector<std::string>& columns,
      const buffer_fields& filters) override {
    std::map<std::string, int64_t> out;
    if (columns.empty())
      return out;
    auto conn = session_.get();
    if (!conn)
      return conn.error();
    auto key = buffer_row_key(model, filters);
    std::vector<std::string> fields;
    for (const auto& c : columns)
      fields.push_back(buffer_counter_field(c));
    std::vector<std::string_view> argv{"HMGET", key};
    argv.insert(argv.end(), fields.begin(), fields.end());
    (*conn)->append(argv);
    auto replies = session_.flush();
    if (!replies)
      return replies.error();
    const auto& r = replies->front();
    if (r.is_error())
      return caf::make_error(errc::command_failed, "buffer get: " + r.error_text());
    for (size_t i = 0; i < columns.size(); ++i)
      out[columns[i]] = std::atoll(std::string{r[i].as_string()}.c_str());
    return out;
  }

  caf::expected<std::vector<std::string>> pending(int partition,
                                                  size_t limit) override {
    std::vector<std::string> out;
    if (limit == 0)
      return out;
    auto conn = session_.get();
    if (!conn)
      return conn.error();
    auto last = std::to_string(limit - 1);
    (*conn)->append({"ZRANGE", buffer_partition_key(partition, partitions_),
                     "0", last});
    auto replies = session_.flush();
    if (!replies)
      return replies.error();
    const auto& r = replies->front();
    if (r.is_error())
      return caf::make_error(errc::command_failed,
                             "buffer pending: " + r.error_text());
    for (const auto& k : r.elements())
      out.emplace_back(k.as_string());
    return out;
  }

  caf::expected<size_t> pending_count(int partition) override {
    auto conn = session_.get();
    if (!conn)
      return conn.error();
    (*conn)->append({"ZCARD", buffer_partition_key(partition, partitions_)});
    auto replies = session_.flush();
    if (!replies)
      return replies.error();
    const auto& r = replies->front();
    if (r.is_error())
      return caf::make_error(errc::command_failed,
                             "buffer pending count: " + r.error_text());
    return static_cast<size_t>(r.as_int());
  }

  caf::expected<std::optional<buffer_take>>
  take(const std::string& row_key, int64_t now) override {
    auto conn = session_.get();
    if (!conn)
      return conn.error();
    auto id = new_uuid4();
    auto tkey = take_key(id);
    auto pending_key = buffer_pending_key(row_key, partitions_);
    auto now_text = std::to_string(now);
    auto r = (*conn)->eval(take_script_,
                           {row_key, pending_key, take_index_key, tkey},
                           {now_text, row_key});
    if (!r) {
      if (!(*conn)->ok())
        session_.reset();
      return r.error();
    }
    if (r->is_nil()) {
      ++stats_.empty_takes;
      return std::optional<buffer_take>{};
    }
    auto t = parse_take(*r, id);
    if (!t)
      return t.error();
    t->taken_at = now;
    ++stats_.takes;
    return std::optional<buffer_take>{std::move(*t)};
  }

  caf::error finish(const std::string& take_id) override {
    auto conn = session_.get();
    if (!conn)
      return conn.error();
    auto tkey = take_key(take_id);
    (*conn)->append({"DEL", tkey});
    (*conn)->append({"ZREM", take_index_key, tkey});
    auto replies = session_.flush();
    if (!replies)
      return replies.error();
    return check_replies(*replies, "buffer finish");
  }

  caf::expected<std::vector<buffer_take>>
  unfinished(int64_t older_than) override {
    auto conn = session_.get();
    if (!conn)
      return conn.error();
    auto bound = "(" + std::to_string(older_than);
    (*conn)->append({"ZRANGEBYSCORE", take_index_key, "-inf", bound,
                     "WITHSCORES"});
    auto listed = session_.flush();
    if (!listed)
      return listed.error();
    const auto& index = listed->front();
    if (index.is_error())
      return caf::make_error(errc::command_failed,
                             "buffer unfinished: " + index.error_text());
    std::vector<std::pair<std::string, int64_t>> keys;
    for (size_t i = 0; i + 1 < index.size(); i += 2)
      keys.emplace_back(std::string{index[i].as_string()},
                        std::atoll(std::string{index[i + 1].as_string()}.c_str()));
    std::vector<buffer_take> out;
    if (keys.empty())
      return out;
    for (const auto& [k, _] : keys)
      (*conn)->append({"HGETALL", k});
    auto hashes = session_.flush();
    if (!hashes)
      return hashes.error();
    for (size_t i = 0; i < keys.size(); ++i) {
      const auto& h = (*hashes)[i];
      if (h.size() == 0)
        continue; // finished meanwhile
      auto t = parse_take(h, keys[i].first.substr(4));
      if (!t)
        return t.error();
      t->taken_at = keys[i].second;
      out.push_back(std::move(*t));
    }
    return out;
  }

  caf::expected<bool> try_lock(const std::string& name,
                               const std::string& token,
                               std::chrono::seconds ttl) override {
    auto conn = session_.get();
    if (!conn)
      return conn.error();
    redis_lock lock{name, ttl, token};
    return lock.acquire(**conn);
  }

  caf::error unlock(const std::string& name,
                    const std::string& token) override {
    auto conn = session_.get();
    if (!conn)
      return conn.error();
    redis_lock lock{name, std::chrono::seconds{1}, token};
    auto r = lock.release(**conn);
    if (!r)
      return r.error();
    return {};
  }

  buffer_backend_stats stats() const override {
    return stats_;
  }

private:
  int partitions_;
  redis_session session_;
  redis_script take_script_;
  buffer_backend_stats stats_;
};

} // namespace

caf::expected<std::unique_ptr<buffer_backend>>
make_redis_buffer_backend(const buffer_backend_options& o) {
  auto ep = parse_redis_url(o.url);
  if (!ep)
    return ep.error();
  return std::unique_ptr<buffer_backend>{
    std::make_unique<redis_buffer>(o, std::move(*ep))};
}

} // namespace vigil
