// The Redis broker in kombu's layout, so that Python Celery clients and
// workers share queues with vigil: lists per queue and priority bucket, the
// `unacked` hash and `unacked_index` sorted set, `unacked_mutex` for sweeps.
// Unlike kombu, a fetch pops and records in one Lua script: no window in
// which a crash loses a message.

#include <hiredis/hiredis.h>
#include <simdjson.h>

#include "actors/backends/broker.hpp"
#include "config/config.hpp"
#include "messages/clock.hpp"
#include "messages/errors.hpp"
#include "messages/json_writer.hpp"
#include "messages/kombu_envelope.hpp"
#include "runtime/adapters/redis.hpp"

namespace vigil {

namespace {

constexpr std::string_view unacked_key = "unacked";
constexpr std::string_view unacked_index_key = "unacked_index";
constexpr std::string_view unacked_mutex_key = "unacked_mutex";
constexpr std::string_view dead_letters_key = "vigil.dead_letters";

// Lua has a stack limit near 8000 for unpack(): keep batches well below.
constexpr size_t max_fetch = 1000;

// KEYS: unacked, unacked_index, dead letters, then the lists in serving
// order. ARGV: max, then the routing key (queue) of each list.
redis_script fetch_script{R"lua(
local max = tonumber(ARGV[1])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local out, hset, zadd = {}, {}, {}
for i = 4, #KEYS do
  if max <= 0 then break end
  local msgs = redis.call('RPOP', KEYS[i], max)
  if msgs then
    local rk = ARGV[i - 2]
    local tail = ', "", ' .. cjson.encode(rk) .. ']'
    for _, m in ipairs(msgs) do
      -- A plain find first: kombu and vigil both write '"delivery_tag": "'.
      local tag
      local i = string.find(m, '"delivery_tag": "', 1, true)
      if i then
        local j = string.find(m, '"', i + 17, true)
        if j then tag = string.sub(m, i + 17, j - 1) end
      else
        tag = string.match(m, '"delivery_tag"%s*:%s*"([^"]+)"')
      end
      if tag then
        hset[#hset + 1] = tag
        hset[#hset + 1] = '[' .. m .. tail
        zadd[#zadd + 1] = now
        zadd[#zadd + 1] = tag
        out[#out + 1] = rk
        out[#out + 1] = tag
        out[#out + 1] = m
      else
        redis.call('LPUSH', KEYS[3], cjson.encode({
          id = t[1] .. '-' .. t[2] .. '-' .. string.sub(redis.sha1hex(m), 1, 12),
          task = '', task_id = '', queue = rk,
          reason = 'message has no properties.delivery_tag',
          time = '', envelope = m}))
      end
    end
    max = max - #msgs
  end
end
if #hset > 0 then
  redis.call('HSET', KEYS[1], unpack(hset))
  redis.call('ZADD', KEYS[2], unpack(zadd))
end
return out
)lua"};

// Moves one unacked message back to the consuming end of its queue, only if
// it is still unacked (a late ack may have won the race).
// KEYS: unacked, unacked_index, queue list. ARGV: tag, envelope.
redis_script restore_script{R"lua(
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then
  redis.call('ZREM', KEYS[2], ARGV[1])
  return 0
end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('RPUSH', KEYS[3], ARGV[2])
return 1
)lua"};

// Releases a lock only if we still hold it. KEYS: lock. ARGV: token.
redis_script unlock_script{R"lua(
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
)lua"};

// Requeues one dead letter and drops its record atomically.
// KEYS: dead letters, queue list. ARGV: record, envelope.
redis_script replay_script{R"lua(
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 1 then
  redis.call('LPUSH', KEYS[2], ARGV[2])
  return 1
end
return 0
)lua"};

caf::error check_replies(const std::vector<redis_reply>& replies,
                         const char* what) {
  for (auto& r : replies)
    if (r->type == REDIS_REPLY_ERROR)
      return caf::make_error(errc::command_failed,
                             std::string{what} + ": " + reply_error(r.get()));
  return {};
}

class redis_broker : public broker {
public:
  redis_broker(std::string url, redis_connection conn)
    : url_(std::move(url)), conn_(std::move(conn)) {
    // nop
  }

  caf::error init() {
    for (auto* s : {&fetch_script, &restore_script, &unlock_script,
                    &replay_script})
      if (auto err = conn_.preload(*s))
        return err;
    return {};
  }

  std::string describe() const override {
    return mask_url(url_);
  }

  caf::error publish(const std::vector<outgoing_task>& batch) override {
    if (batch.empty())
      return {};
    // One LPUSH per list with every message for it, in order.
    std::vector<std::string> keys;
    std::vector<std::string> envelopes;
    keys.reserve(batch.size());
    envelopes.reserve(batch.size());
    for (auto& out : batch) {
      keys.push_back(kombu_queue_key(out.queue, out.msg.priority));
      envelopes.push_back(encode_kombu_envelope(out.msg, out.queue,
                                                new_uuid4()));
      declare(out.queue);
    }
    std::vector<std::string_view> argv;
    argv.reserve(batch.size() + 2);
    size_t i = 0;
    while (i < batch.size()) {
      argv.clear();
      argv.emplace_back("LPUSH");
      argv.emplace_back(keys[i]);
      size_t j = i;
      while (j < batch.size() && keys[j] == keys[i])
        argv.emplace_back(envelopes[j++]);
      conn_.append(argv);
      i = j;
    }
    auto replies = conn_.flush();
    if (!replies)
      return replies.error();
    return check_replies(*replies, "LPUSH");
  }

  caf::error push_raw(std::string_view queue,
                      std::string_view envelope) override {
    auto r = conn_.command({"LPUSH", queue, envelope});
    return r ? caf::error{} : r.error();
  }

  caf::error fetch(const std::vector<std::string>& queues, size_t max,
                   std::vector<raw_delivery>& out) override {
    if (max == 0 || queues.empty())
      return {};
    max = std::min(max, max_fetch);
    std::vector<std::string> list_keys;
    std::vector<std::string_view> keys{unacked_key, unacked_index_key,
                                       dead_letters_key};
    auto max_text = std::to_string(max);
    std::vector<std::string_view> args{max_text};
    list_keys.reserve(queues.size() * 4);
    for (int prio : {0, 3, 6, 9})
      for (auto& q : queues)
        list_keys.push_back(kombu_queue_key(q, prio));
    for (size_t i = 0; i < list_keys.size(); ++i) {
      keys.emplace_back(list_keys[i]);
      args.emplace_back(queues[i % queues.size()]);
    }
    auto r = conn_.eval(fetch_script, keys, args);
    if (!r)
      return r.error();
    auto* reply = r->get();
    if (reply->type != REDIS_REPLY_ARRAY)
      return caf::make_error(errc::command_failed,
                             "fetch script returned no array");
    for (size_t i = 0; i + 2 < reply->elements; i += 3) {
      out.push_back(raw_delivery{std::string{reply_text(reply->element[i])},
                                 std::string{reply_text(reply->element[i + 1])},
                                 std::string{reply_text(reply->element[i + 2])}});
    }
    return {};
  }

  caf::error ack(const std::vector<std::string>& tags) override {
    if (tags.empty())
      return {};
    std::vector<std::string_view> zrem{"ZREM", unacked_index_key};
    std::vector<std::string_view> hdel{"HDEL", unacked_key};
    zrem.insert(zrem.end(), tags.begin(), tags.end());
    hdel.insert(hdel.end(), tags.begin(), tags.end());
    conn_.append({"MULTI"});
    conn_.append(zrem);
    conn_.append(hdel);
    conn_.append({"EXEC"});
    auto replies = conn_.flush();
    if (!replies)
      return replies.error();
    return check_replies(*replies, "ack");
  }

  caf::error requeue(const std::vector<std::string>& tags) override {
    auto n = restore_tags(tags);
    return n ? caf::error{} : n.error();
  }

  caf::expected<size_t>
  restore_expired(std::chrono::duration<double> visibility_timeout) override {
    auto token = new_uuid4();
    auto locked = conn_.command({"SET", unacked_mutex_key, token, "PX",
                                 "300000", "NX"});
    if (!locked)
      return locked.error();
    if ((*locked)->type == REDIS_REPLY_NIL)
      return size_t{0}; // another worker (vigil or Celery) is sweeping
    auto cutoff = std::to_string(static_cast<double>(now_unix_us()) / 1e6
                                 - visibility_timeout.count());
    size_t total = 0;
    caf::error failure;
    for (;;) {
      auto r = conn_.command({"ZRANGEBYSCORE", unacked_index_key, "-inf",
                              cutoff, "LIMIT", "0", "500"});
      if (!r) {
        failure = r.error();
        break;
      }
      std::vector<std::string> tags;
      for (size_t i = 0; i < (*r)->elements; ++i)
        tags.emplace_back(reply_text((*r)->element[i]));
      if (tags.empty())
        break;
      auto n = restore_tags(tags);
      if (!n) {
        failure = n.error();
        break;
      }
      total += *n;
      if (tags.size() < 500)
        break;
    }
    if (conn_.ok())
      conn_.eval(unlock_script, {unacked_mutex_key}, {token});
    if (failure)
      return failure;
    return total;
  }

  caf::error dead_letter_batch(const std::vector<dead_letter>& letters,
                               const std::vector<std::string>& tags) override {
    if (!letters.empty()) {
      std::vector<std::string> records;
      records.reserve(letters.size());
      for (auto& x : letters)
        records.push_back(to_json(x));
      std::vector<std::string_view> argv{"LPUSH", dead_letters_key};
      argv.insert(argv.end(), records.begin(), records.end());
      // The record is durable before the delivery is acknowledged.
      if (auto r = conn_.command(argv); !r)
        return r.error();
    }
    return ack(tags);
  }

  caf::expected<std::vector<dead_letter>> list_dead_letters() override {
    auto r = conn_.command({"LRANGE", dead_letters_key, "0", "-1"});
    if (!r)
      return r.error();
    std::vector<dead_letter> out;
    for (size_t i = 0; i < (*r)->elements; ++i) {
      auto text = reply_text((*r)->element[i]);
      auto x = dead_letter_from_json(text);
      if (x)
        out.push_back(std::move(*x));
    }
    return out;
  }

  caf::expected<size_t> replay_dead_letters(std::string_view id) override {
    auto r = conn_.command({"LRANGE", dead_letters_key, "0", "-1"});
    if (!r)
      return r.error();
    size_t n = 0;
    for (size_t i = 0; i < (*r)->elements; ++i) {
      std::string record{reply_text((*r)->element[i])};
      auto x = dead_letter_from_json(record);
      if (!x || (!id.empty() && x->id != id))
        continue;
      auto key = kombu_queue_key(x->queue.empty() ? "celery" : x->queue, 0);
      auto moved = conn_.eval(replay_script, {dead_letters_key, key},
                              {record, x->envelope});
      if (!moved)
        return moved.error();
      if ((*moved)->type == REDIS_REPLY_INTEGER && (*moved)->integer == 1)
        ++n;
    }
    return n;
  }

  caf::expected<size_t> queue_length(std::string_view queue) override {
    std::vector<std::string> keys;
    for (int prio : {0, 3, 6, 9})
      keys.push_back(kombu_queue_key(queue, prio));
    for (auto& k : keys)
      conn_.append({"LLEN", k});
    auto replies = conn_.flush();
    if (!replies)
      return replies.error();
    size_t n = 0;
    for (auto& r : *replies)
      if (r->type == REDIS_REPLY_INTEGER)
        n += static_cast<size_t>(r->integer);
    return n;
  }

  caf::expected<size_t> unacked_count() override {
    auto r = conn_.command({"HLEN", unacked_key});
    if (!r)
      return r.error();
    return static_cast<size_t>((*r)->integer);
  }

private:
  // Declares a queue once per connection as kombu does, so that Python
  // tooling that looks up bindings finds it.
  void declare(const std::string& queue) {
    for (auto& q : declared_)
      if (q == queue)
        return;
    declared_.push_back(queue);
    auto key = "_kombu.binding." + queue;
    auto binding = queue + std::string{kombu_priority_sep}
                   + std::string{kombu_priority_sep} + queue;
    conn_.append({"SADD", key, binding});
  }

  // Restores `tags` from the unacked hash to their queues, marked as
  // redelivered; returns how many were still unacked.
  caf::expected<size_t> restore_tags(const std::vector<std::string>& tags) {
    if (tags.empty())
      return size_t{0};
    std::vector<std::string_view> hmget{"HMGET", unacked_key};
    hmget.insert(hmget.end(), tags.begin(), tags.end());
    auto r = conn_.command(hmget);
    if (!r)
      return r.error();
    simdjson::dom::parser parser;
    std::vector<std::pair<std::string, std::string>> moves; // list key, env
    std::vector<size_t> index;
    for (size_t i = 0; i < (*r)->elements && i < tags.size(); ++i) {
      auto payload = reply_text((*r)->element[i]);
      simdjson::dom::array parts;
      std::string_view rk;
      if (payload.empty()
          || parser.parse(payload.data(), payload.size()).get(parts)
          || parts.size() < 3 || parts.at(2).get(rk)) {
        // Unreadable or already gone: drop the index entry only.
        conn_.append({"ZREM", unacked_index_key, tags[i]});
        continue;
      }
      auto env = std::string{simdjson::minify(parts.at(0).value_unsafe())};
      auto marked = mark_redelivered(env);
      moves.emplace_back(std::string{rk}, marked ? *marked : env);
      index.push_back(i);
    }
    for (size_t j = 0; j < moves.size(); ++j)
      conn_.append_eval(restore_script,
                        {unacked_key, unacked_index_key, moves[j].first},
                        {tags[index[j]], moves[j].second});
    auto replies = conn_.flush();
    if (!replies)
      return replies.error();
    size_t n = 0;
    for (auto& rep : *replies)
      if (rep->type == REDIS_REPLY_INTEGER && rep->integer == 1)
        ++n;
    return n;
  }

  std::string url_;
  redis_connection conn_;
  std::vector<std::string> declared_;
};

} // namespace

caf::expected<std::unique_ptr<broker>>
make_redis_broker(std::string_view url, std::chrono::milliseconds timeout) {
  auto ep = parse_redis_url(url);
  if (!ep)
    return ep.error();
  auto conn = redis_connection::connect(*ep, timeout);
  if (!conn)
    return conn.error();
  auto result = std::make_unique<redis_broker>(std::string{url},
                                               std::move(*conn));
  if (auto err = result->init())
    return err;
  return std::unique_ptr<broker>{std::move(result)};
}

} // namespace vigil
