// The Redis broker in kombu's layout, so that Python Celery clients and
// workers share queues with vigil: lists per queue and priority bucket, the
// `unacked` hash and `unacked_index` sorted set, `unacked_mutex` for sweeps.
// Unlike kombu, a fetch never holds a message only in memory: LMOVE takes
// each one into this connection's own in-flight list, and one transaction
// then records them in `unacked` and empties that list. A consumer that dies
// in between leaves its in-flight list behind, and the next sweep by any
// consumer puts those messages back on their queues. Message bodies never
// pass through Lua, which costs Redis several times more CPU per message.
// Beside `unacked`, the hash `unacked_deliveries` counts per delivery tag
// the deliveries that ended with the holder dead (kombu ignores it): set
// when a crashed holder's message is restored, raised before a redelivered
// message runs again, read at fetch, dropped on ack.

#include <algorithm>
#include <charconv>
#include <cstdint>

#include <simdjson.h>

#include "actors/backends/broker.hpp"
#include "adapters/redis.hpp"
#include "config/config.hpp"
#include "messages/clock.hpp"
#include "messages/errors.hpp"
#include "messages/json_writer.hpp"
#include "messages/kombu_envelope.hpp"

namespace vigil {

namespace {

constexpr std::string_view unacked_key = "unacked";
constexpr std::string_view unacked_index_key = "unacked_index";
constexpr std::string_view unacked_mutex_key = "unacked_mutex";
constexpr std::string_view unacked_deliveries_key = "unacked_deliveries";
constexpr std::string_view dead_letters_key = "vigil.dead_letters";

constexpr std::string_view inflight_set_key = "vigil.inflight";
constexpr size_t max_fetch = 1000;

// Moves one unacked message back to the consuming end of its queue, only if
// it is still unacked (a late ack may have won the race). When its holder
// crashed (ARGV[3] == '1'), a delivery with no failure counted gets one; a
// count raised before it ran (count_delivery) already holds this one.
// KEYS: unacked, unacked_index, queue list, unacked_deliveries.
// ARGV: tag, envelope, crashed.
redis_script restore_script{R"lua(
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then
  redis.call('ZREM', KEYS[2], ARGV[1])
  return 0
end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('RPUSH', KEYS[3], ARGV[2])
if ARGV[3] == '1' then
  redis.call('HSETNX', KEYS[4], ARGV[1], 1)
end
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

// A count as Redis keeps it (decimal text); 0 for nil or anything else.
int64_t parse_count(std::string_view text) {
  int64_t n = 0;
  std::from_chars(text.data(), text.data() + text.size(), n);
  return n;
}

std::string check_replies_text(const std::vector<redis_reply>& replies) {
  for (auto& r : replies)
    if (r.is_error())
      return r.error_text();
  return "unexpected reply";
}

class redis_broker : public broker {
public:
  redis_broker(std::string url, redis_connection conn)
    : url_(std::move(url)), conn_(std::move(conn)) {
    // nop
  }

  caf::error init() {
    for (auto* s : {&restore_script, &unlock_script, &replay_script})
      if (auto err = conn_.preload(*s))
        return err;
    return {};
  }

  ~redis_broker() override {
    // A clean close leaves nothing in flight; forget this connection's list.
    if (conn_.ok()) {
      conn_.append({"SREM", inflight_set_key, inflight_key_});
      conn_.append({"DEL", alive_key_});
      conn_.flush();
    }
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
    // Serving order: priority bucket first, then queue order (kombu's).
    std::vector<std::string> list_keys;
    std::vector<const std::string*> list_queue;
    for (int prio : {0, 3, 6, 9})
      for (auto& q : queues) {
        list_keys.push_back(kombu_queue_key(q, prio));
        list_queue.push_back(&q);
      }
    // Say that this consumer is alive (and when) in the same round trip.
    size_t prefix = append_keep_alive();
    for (auto& k : list_keys)
      conn_.append({"LLEN", k});
    auto replies = conn_.flush();
    if (!replies)
      return replies.error();
    if (auto err = check_replies(*replies, "keep-alive"))
      return err;
    // Take from each list in one transaction: SORT ... STORE copies the
    // messages about to be taken into an in-flight list on the server, so
    // they are never only in this process's memory.
    struct take {
      size_t list;
      size_t count;
      std::string backup;
      std::string count_text;
      std::string range_start;
      std::string trim_end;
    };
    std::vector<take> takes;
    size_t wanted = 0;
    for (size_t i = 0; i < list_keys.size() && wanted < max; ++i) {
      auto& r = (*replies)[prefix + i]; // after the keep-alive replies
      auto len = static_cast<size_t>(r.as_int());
      if (len == 0)
        continue;
      auto n = std::min(len, max - wanted);
      wanted += n;
      // The negative offsets as negative numbers: GCC 12 misreports
      // "-" + std::to_string(n) here (-Wrestrict, GCC bug 105329).
      auto back = -static_cast<int64_t>(n);
      takes.push_back(take{i, n, inflight_key_ + ":" + std::to_string(i),
                           std::to_string(n), std::to_string(back),
                           std::to_string(back - 1)});
    }
    if (takes.empty())
      return {};
    conn_.append({"MULTI"});
    for (auto& t : takes) {
      auto& key = list_keys[t.list];
      conn_.append({"SORT", key, "BY", "nosort", "DESC", "LIMIT", "0",
                    t.count_text, "STORE", t.backup});
      conn_.append({"LRANGE", key, t.range_start, "-1"});
      conn_.append({"LTRIM", key, "0", t.trim_end});
    }
    conn_.append({"EXEC"});
    auto taken = conn_.flush();
    if (!taken)
      return taken.error();
    auto& exec = taken->back();
    if (!exec.is_array() || exec.size() != takes.size() * 3)
      return caf::make_error(errc::command_failed,
                             "taking messages failed: "
                               + check_replies_text(*taken));
    // LRANGE lists oldest last; serve the oldest (rightmost) first.
    std::vector<std::pair<std::string_view, const std::string*>> taken_msgs;
    taken_msgs.reserve(wanted);
    for (size_t t = 0; t < takes.size(); ++t) {
      auto range = exec[t * 3 + 1];
      for (size_t j = range.size(); j-- > 0;)
        taken_msgs.emplace_back(range[j].as_string(),
                                list_queue[takes[t].list]);
    }
    // Record what was taken exactly as kombu does, in one transaction that
    // also empties the in-flight list.
    auto score = std::to_string(static_cast<double>(now_unix_us()) / 1e6);
    std::vector<std::string> payloads;
    std::vector<std::string> dead_records;
    payloads.reserve(taken_msgs.size());
    std::vector<std::string_view> hset{"HSET", unacked_key};
    std::vector<std::string_view> zadd{"ZADD", unacked_index_key};
    auto first = out.size();
    for (auto& [env, queue] : taken_msgs) {
      auto tag = find_delivery_tag(env);
      if (tag.empty()) {
        dead_letter x{new_uuid4(), "", "", *queue,
                      "message has no properties.delivery_tag", now_unix_us(),
                      std::string{env}, {}};
        dead_records.push_back(to_json(x));
        continue;
      }
      std::string payload;
      payload.reserve(env.size() + queue->size() + 12);
      payload += '[';
      payload += env;
      payload += ", \"\", ";
      append_json_string(payload, *queue);
      payload += ']';
      payloads.push_back(std::move(payload));
      out.push_back(raw_delivery{*queue, std::move(tag), std::string{env}});
    }
    for (size_t i = first, j = 0; i < out.size(); ++i, ++j) {
      hset.emplace_back(out[i].tag);
      hset.emplace_back(payloads[j]);
      zadd.emplace_back(score);
      zadd.emplace_back(out[i].tag);
    }
    std::vector<std::string_view> hmget{"HMGET", unacked_deliveries_key};
    for (size_t i = first; i < out.size(); ++i)
      hmget.emplace_back(out[i].tag);
    conn_.append({"MULTI"});
    if (hset.size() > 2) {
      conn_.append(hmget); // first: its reply is the EXEC array's first
      conn_.append(hset);
      conn_.append(zadd);
    }
    if (!dead_records.empty()) {
      std::vector<std::string_view> lpush{"LPUSH", dead_letters_key};
      lpush.insert(lpush.end(), dead_records.begin(), dead_records.end());
      conn_.append(lpush);
    }
    for (auto& t : takes)
      conn_.append({"DEL", t.backup});
    conn_.append({"EXEC"});
    auto recorded = conn_.flush();
    if (!recorded) {
      out.resize(first); // left in the in-flight list for a sweep to restore
      return recorded.error();
    }
    if (auto err = check_replies(*recorded, "recording deliveries")) {
      out.resize(first);
      return err;
    }
    if (hset.size() > 2) {
      auto counts = recorded->back()[0];
      for (size_t i = first, j = 0; i < out.size(); ++i, ++j)
        out[i].failed_deliveries = static_cast<uint32_t>(
          std::clamp<int64_t>(parse_count(counts[j].as_string()), 0,
                              UINT32_MAX));
    }
    return {};
  }

  caf::error ack(const std::vector<std::string>& tags) override {
    if (tags.empty())
      return {};
    std::vector<std::string_view> zrem{"ZREM", unacked_index_key};
    std::vector<std::string_view> hdel{"HDEL", unacked_key};
    std::vector<std::string_view> hdel_counts{"HDEL", unacked_deliveries_key};
    zrem.insert(zrem.end(), tags.begin(), tags.end());
    hdel.insert(hdel.end(), tags.begin(), tags.end());
    hdel_counts.insert(hdel_counts.end(), tags.begin(), tags.end());
    conn_.append({"MULTI"});
    conn_.append(zrem);
    conn_.append(hdel);
    conn_.append(hdel_counts);
    conn_.append({"EXEC"});
    auto replies = conn_.flush();
    if (!replies)
      return replies.error();
    return check_replies(*replies, "ack");
  }

  caf::error requeue(const std::vector<std::string>& tags) override {
    auto n = restore_tags(tags, false);
    return n ? caf::error{} : n.error();
  }

  caf::expected<size_t>
  restore_unacked(const std::vector<std::string>& tags) override {
    return restore_tags(tags, true);
  }

  caf::expected<uint32_t> count_delivery(const std::string& tag) override {
    auto r = conn_.command({"HINCRBY", unacked_deliveries_key, tag, "1"});
    if (!r)
      return r.error();
    return static_cast<uint32_t>(std::clamp<int64_t>(r->as_int(), 0,
                                                     UINT32_MAX));
  }

  caf::expected<size_t>
  restore_expired(std::chrono::duration<double> visibility_timeout) override {
    auto token = new_uuid4();
    auto locked = conn_.command({"SET", unacked_mutex_key, token, "PX",
                                 "300000", "NX"});
    if (!locked)
      return locked.error();
    if (locked->is_nil())
      return size_t{0}; // another worker (vigil or Celery) is sweeping
    auto cutoff = std::to_string(static_cast<double>(now_unix_us()) / 1e6
                                 - visibility_timeout.count());
    size_t total = 0;
    caf::error failure;
    if (auto n = recover_orphans(visibility_timeout); n)
      total += *n;
    else
      failure = n.error();
    for (;;) {
      auto r = conn_.command({"ZRANGEBYSCORE", unacked_index_key, "-inf",
                              cutoff, "LIMIT", "0", "500"});
      if (!r) {
        failure = r.error();
        break;
      }
      std::vector<std::string> tags;
      for (auto tag : r->elements())
        tags.emplace_back(tag.as_string());
      if (tags.empty())
        break;
      auto n = restore_tags(tags, true);
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
    for (auto record : r->elements()) {
      out.push_back(read_dead_letter_record(record.as_string()));
    }
    return out;
  }

  caf::expected<size_t> replay_dead_letters(std::string_view id) override {
    auto r = conn_.command({"LRANGE", dead_letters_key, "0", "-1"});
    if (!r)
      return r.error();
    size_t n = 0;
    for (auto element : r->elements()) {
      std::string record{element.as_string()};
      // An unreadable record has no message to requeue: it stays listed.
      auto x = dead_letter_from_json(record);
      if (!x || !x->unreadable.empty() || (!id.empty() && x->id != id))
        continue;
      auto key = kombu_queue_key(x->queue.empty() ? "celery" : x->queue, 0);
      auto moved = conn_.eval(replay_script, {dead_letters_key, key},
                              {record, x->envelope});
      if (!moved)
        return moved.error();
      if (moved->as_int() == 1)
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
      n += static_cast<size_t>(r.as_int());
    return n;
  }

  caf::expected<size_t> unacked_count() override {
    auto r = conn_.command({"HLEN", unacked_key});
    if (!r)
      return r.error();
    return static_cast<size_t>(r->as_int());
  }

private:
  // Queues the commands that mark this connection's in-flight list as owned
  // by a live consumer, with the time of this fetch; returns how many.
  size_t append_keep_alive() {
    // SADD every time: a sweep that took this consumer for dead while it
    // idled removed it from the set.
    conn_.append({"SADD", inflight_set_key, inflight_key_});
    auto now_ms = std::to_string(now_unix_us() / 1000);
    conn_.append({"SET", alive_key_, now_ms, "PX", "600000"});
    return 2;
  }

  // A consumer counts as dead once it has not fetched for longer than the
  // visibility timeout (a live one holds an in-flight list for milliseconds).
  caf::expected<size_t>
  recover_orphans(std::chrono::duration<double> visibility_timeout) {
    auto members = conn_.command({"SMEMBERS", inflight_set_key});
    if (!members)
      return members.error();
    size_t total = 0;
    auto now_ms = now_unix_us() / 1000;
    auto limit_ms = static_cast<int64_t>(visibility_timeout.count() * 1000);
    for (auto member : members->elements()) {
      std::string list{member.as_string()};
      if (list == inflight_key_)
        continue;
      auto alive = conn_.command({"GET", list + ".alive"});
      if (!alive)
        return alive.error();
      auto last = alive->as_string();
      int64_t last_ms = 0;
      std::from_chars(last.data(), last.data() + last.size(), last_ms);
      if (!last.empty() && now_ms - last_ms <= limit_ms)
        continue;
      // One backup list per source list: "<list>:<index>".
      std::vector<std::string> backups;
      std::string cursor = "0";
      do {
        auto page = conn_.command({"SCAN", cursor, "MATCH", list + ":*",
                                   "COUNT", "1000"});
        if (!page)
          return page.error();
        cursor = std::string{(*page)[0].as_string()};
        for (auto key : (*page)[1].elements())
          backups.emplace_back(key.as_string());
      } while (cursor != "0");
      for (auto& backup : backups) {
        auto items = conn_.command({"LRANGE", backup, "0", "-1"});
        if (!items)
          return items.error();
        conn_.append({"MULTI"});
        // The backup holds the oldest first: push it back last, to the
        // consuming end, so it is served first again.
        for (size_t j = items->size(); j-- > 0;) {
          auto env = (*items)[j].as_string();
          auto d = decode_kombu_envelope(env);
          auto queue = d && !d->queue.empty() ? d->queue
                                               : std::string{"celery"};
          conn_.append({"RPUSH", queue, env});
        }
        conn_.append({"DEL", backup});
        conn_.append({"EXEC"});
        auto r = conn_.flush();
        if (!r)
          return r.error();
        if (auto err = check_replies(*r, "recovering in-flight messages"))
          return err;
        total += items->size();
      }
      conn_.append({"SREM", inflight_set_key, list});
      conn_.append({"DEL", list + ".alive"});
      if (auto r = conn_.flush(); !r)
        return r.error();
    }
    return total;
  }

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
  // redelivered, counting a failed delivery if their holder `crashed`;
  // returns how many were still unacked.
  caf::expected<size_t> restore_tags(const std::vector<std::string>& tags,
                                     bool crashed) {
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
    for (size_t i = 0; i < r->size() && i < tags.size(); ++i) {
      auto payload = (*r)[i].as_string();
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
    std::string_view crashed_arg = crashed ? "1" : "0";
    for (size_t j = 0; j < moves.size(); ++j)
      conn_.append_eval(restore_script,
                        {unacked_key, unacked_index_key, moves[j].first,
                         unacked_deliveries_key},
                        {tags[index[j]], moves[j].second, crashed_arg});
    auto replies = conn_.flush();
    if (!replies)
      return replies.error();
    size_t n = 0;
    for (auto& rep : *replies)
      if (rep.as_int() == 1)
        ++n;
    return n;
  }

  std::string url_;
  redis_connection conn_;
  std::vector<std::string> declared_;
  /// This connection's in-flight list, and the key that says it is alive.
  std::string inflight_key_ = "vigil.inflight." + new_uuid4();
  std::string alive_key_ = inflight_key_ + ".alive";
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
