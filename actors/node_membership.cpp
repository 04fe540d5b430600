#include "actors/node_membership.hpp"

#include <algorithm>
#include <optional>
#include <tuple>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "adapters/redis.hpp"
#include "config/config.hpp"
#include "messages/clock.hpp"
#include "messages/errors.hpp"

namespace vigil {

std::string membership_card_key(const std::string& id) {
  return std::string{membership_index_key} + ":" + id;
}

namespace {

caf::expected<redis_connection> open(const std::string& url,
                                     std::chrono::milliseconds timeout) {
  auto ep = parse_redis_url(url);
  if (!ep)
    return ep.error();
  return redis_connection::connect(*ep, timeout);
}

std::string seconds_text(double s) {
  return std::to_string(s);
}


redis_connection* connection(membership_state& st) {
  if (st.conn && st.conn->ok())
    return &*st.conn;
  st.conn.reset();
  auto c = open(st.opts.redis_url, st.opts.io_timeout);
  if (!c) {
    st.counters.fail(error_text(c.error()));
    return nullptr;
  }
  st.conn = std::move(*c);
  return &*st.conn;
}

void announce(membership_state& st) {
  auto card = st.opts.identity->card();
  auto* c = connection(st);
  caf::error err;
  if (c) {
    auto now = now_unix_seconds();
    auto key = membership_card_key(card.id);
    auto body = encode_node_card(card);
    auto ttl_ms = std::to_string(st.opts.ttl.count());
    auto score = seconds_text(now);
    auto oldest = "(" + seconds_text(now - st.opts.ttl.count() / 1000.0);
    c->append({"SET", key, body, "PX", ttl_ms});
    c->append({"ZADD", membership_index_key, score, card.id});
    c->append({"ZREMRANGEBYSCORE", membership_index_key, "-inf", oldest});
    c->append({"PEXPIRE", membership_index_key, ttl_ms});
    auto replies = c->flush();
    err = replies ? check_replies(*replies, "membership heartbeat")
                  : replies.error();
  } else {
    err = caf::make_error(errc::connection_failed,
                          st.counters.last_error);
  }
  if (err) {
    st.counters.fail(error_text(err));
    if (!st.failing)
      spdlog::warn("membership: cannot announce this node in {}: {}; "
                   "retrying every heartbeat",
                   mask_url(st.opts.redis_url), error_text(err));
    st.failing = true;
    return;
  }
  if (st.failing)
    spdlog::info("membership: announcing this node again");
  st.failing = false;
  ++st.counters.processed;
}

} // namespace

node_membership_actor::behavior_type
node_membership(
  node_membership_actor::stateful_pointer<membership_state> self,
  membership_options opts) {
  auto* st = &self->state;
  st->opts = std::move(opts);
  announce(*st);
  self->delayed_send(self, st->opts.interval, poll_atom_v);
  return {
    [=](poll_atom) {
      if (st->removed)
        return;
      announce(*st);
      self->delayed_send(self, st->opts.interval, poll_atom_v);
    },
    [=](drain_atom) {
      st->removed = true;
      auto id = st->opts.identity->card().id;
      auto* c = connection(*st);
      if (!c)
        return false;
      c->append({"DEL", membership_card_key(id)});
      c->append({"ZREM", membership_index_key, id});
      auto replies = c->flush();
      return replies && !check_replies(*replies, "membership removal");
    },
    [=](status_atom) {
      auto s = make_status(self, st->counters);
      s.extra["redis"] = mask_url(st->opts.redis_url);
      s.extra["announcing"] = st->failing ? "false" : "true";
      return s;
    },
  };
}

caf::expected<std::vector<node_card>>
read_members(const std::string& redis_url, std::chrono::milliseconds timeout,
             std::chrono::milliseconds ttl) {
  auto c = open(redis_url, timeout);
  if (!c)
    return c.error();
  auto now = now_unix_seconds();
  auto oldest = seconds_text(now - ttl.count() / 1000.0);
  auto ids = c->command(
    {"ZRANGEBYSCORE", membership_index_key, oldest, "+inf"});
  if (!ids)
    return ids.error();
  std::vector<node_card> out;
  if (ids->size() == 0)
    return out;
  std::vector<std::string> keys;
  for (auto id : ids->elements())
    keys.push_back(membership_card_key(std::string{id.as_string()}));
  std::vector<std::string_view> argv{"MGET"};
  for (auto& k : keys)
    argv.push_back(k);
  auto cards = c->command(argv);
  if (!cards)
    return cards.error();
  for (auto v : cards->elements()) {
    if (!v.is_string())
      continue; // expired between the two reads: gone
    if (auto card = decode_node_card(v.as_string()))
      out.push_back(std::move(*card));
  }
  // A stable order (the index moves with every heartbeat): by start.
  std::sort(out.begin(), out.end(), [](const node_card& x, const node_card& y) {
    return std::tie(x.started, x.id) < std::tie(y.started, y.id);
  });
  return out;
}

} // namespace vigil
