#include "actors/cron_scheduler.hpp"

#include <algorithm>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include "messages/clock.hpp"
#include "messages/crontab.hpp"
#include "messages/errors.hpp"

namespace vigil {

namespace {

using self_ptr = cron_scheduler_actor::stateful_pointer<cron_scheduler_state>;
using std::chrono::milliseconds;
using steady = std::chrono::steady_clock;

// Claims a tick for the lock holder: 1 = claimed (recorded as the entry's
// last tick), 0 = that tick or a later one was sent already, -1 = the token
// does not hold the lock.
constexpr const char* claim_lua = R"lua(
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return -1
end
local last = redis.call('HGET', KEYS[2], ARGV[2])
if last and tonumber(last) >= tonumber(ARGV[3]) then
  return 0
end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
return 1
)lua";

redis_script& claim_script() {
  static redis_script script{claim_lua};
  return script;
}

int64_t now_ms() {
  return now_unix_us() / 1000;
}

milliseconds lock_step_interval(const cron_scheduler_options& opts) {
  return std::max(milliseconds{20}, opts.lock_ttl / 5);
}

// Lock calls must fail well before the lease could run out unnoticed.
milliseconds redis_timeout(const cron_scheduler_options& opts) {
  return std::clamp(opts.lock_ttl / 2, milliseconds{100}, milliseconds{2000});
}

std::string hostname() {
  char buf[256] = {0};
  gethostname(buf, sizeof(buf) - 1);
  return buf;
}

void mark_lost(self_ptr self, const std::string& why) {
  auto& st = self->state;
  if (!st.held)
    return;
  st.held = false;
  ++st.lock_lost;
  spdlog::warn("cron: lost the scheduler lock ({}); standing by", why);
}

void on_redis_error(self_ptr self, const caf::error& err) {
  auto& st = self->state;
  auto text = error_text(err);
  st.counters.fail(text);
  if (st.redis)
    spdlog::warn("cron: lock store failed: {}; reconnecting", text);
  st.redis.reset();
  mark_lost(self, "lock store unreachable");
}

bool ensure_redis(self_ptr self, bool ignore_backoff = false) {
  auto& st = self->state;
  if (st.redis && st.redis->ok())
    return true;
  st.redis.reset();
  auto now = steady::now();
  if (!ignore_backoff && now < st.next_redis_connect)
    return false;
  if (!st.lock_endpoint) {
    auto ep = parse_redis_url(st.opts.lock_url);
    if (!ep) {
      st.counters.fail("cron.lock-url: " + error_text(ep.error()));
      st.next_redis_connect = now + milliseconds{5000};
      return false;
    }
    st.lock_endpoint = std::move(*ep);
  }
  auto conn = redis_connection::connect(*st.lock_endpoint,
                                        redis_timeout(st.opts));
  if (!conn) {
    st.redis_backoff = std::clamp(st.redis_backoff * 2, milliseconds{100},
                                  milliseconds{2000});
    st.next_redis_connect = now + st.redis_backoff;
    auto text = error_text(conn.error());
    if (st.counters.last_error != text)
      spdlog::warn("cron: lock store unavailable: {}; retrying", text);
    st.counters.fail(std::move(text));
    return false;
  }
  if (st.redis_backoff.count() > 0)
    spdlog::info("cron: lock store {} reachable again",
                 to_string(*st.lock_endpoint));
  st.redis_backoff = milliseconds{0};
  st.redis.emplace(std::move(*conn));
  return true;
}

// Takes what the cluster recorded as fired, so that the no-burst policy
// counts from there rather than from this node's own sends.
void refresh_last_fired(self_ptr self) {
  auto& st = self->state;
  auto r = st.redis->command({"HGETALL", st.opts.last_key});
  if (!r) {
    on_redis_error(self, r.error());
    return;
  }
  for (size_t i = 0; i + 1 < r->size(); i += 2) {
    auto name = (*r)[i].as_string();
    auto tick_text = (*r)[i + 1].as_string();
    int64_t tick = 0;
    try {
      tick = std::stoll(std::string{tick_text});
    } catch (...) {
      continue;
    }
    // A recorded tick replaces the start time even if older: the ticks
    // missed since then collapse into one send (no burst, no gap).
    for (auto& es : st.entries)
      if (es.entry.name == name) {
        es.last_ms = es.fired_before ? std::max(es.last_ms, tick) : tick;
        es.fired_before = true;
      }
  }
}

// Renews the lease, or tries to take the lock, once per lock step.
void lock_step(self_ptr self) {
  auto& st = self->state;
  auto now = steady::now();
  if (st.held && now >= st.held_until)
    mark_lost(self, "could not renew it in time");
  if (now < st.next_lock_step)
    return;
  st.next_lock_step = now + lock_step_interval(st.opts);
  if (!ensure_redis(self))
    return;
  auto r = st.held ? st.lock->renew(*st.redis) : st.lock->acquire(*st.redis);
  if (!r) {
    on_redis_error(self, r.error());
    return;
  }
  if (!*r) {
    mark_lost(self, "it expired and another scheduler may hold it");
    return;
  }
  st.held_until = now + st.opts.lock_ttl;
  if (!st.held) {
    st.held = true;
    ++st.lock_acquired;
    spdlog::info("cron: took the scheduler lock {} on {} (token {})",
                 st.opts.lock_key, to_string(*st.lock_endpoint),
                 st.lock->token());
    refresh_last_fired(self);
  }
}

// 1 = claimed, 0 = sent already, -1 = not the holder; an error on I/O.
caf::expected<int64_t> claim(self_ptr self, const std::string& name,
                             int64_t tick) {
  auto& st = self->state;
  auto tick_text = std::to_string(tick);
  auto r = st.redis->eval(claim_script(),
                          {st.opts.lock_key, st.opts.last_key},
                          {st.lock->token(), name, tick_text});
  if (!r)
    return r.error();
  if (!r->is_integer())
    return caf::make_error(errc::command_failed,
                           "unexpected reply to the cron claim script");
  return r->as_int();
}

void fire_due(self_ptr self) {
  auto& st = self->state;
  auto now = now_ms();
  for (size_t i = 0; i < st.entries.size(); ++i) {
    auto& es = st.entries[i];
    auto d = decide_fire(es.entry.timing, es.last_ms, now);
    es.next_ms = d.next;
    if (!d.fire)
      continue;
    if (st.lock) {
      if (!st.held || !st.redis)
        return;
      auto claimed = claim(self, es.entry.name, *d.fire);
      if (!claimed) {
        on_redis_error(self, claimed.error());
        return;
      }
      if (*claimed < 0) {
        mark_lost(self, "another scheduler holds it");
        return;
      }
      if (*claimed == 0) {
        ++st.fired_elsewhere;
        es.last_ms = *d.fire;
        es.fired_before = true;
        continue;
      }
    }
    es.last_ms = *d.fire;
    es.fired_before = true;
    // An older claimed tick still unsent is superseded: no burst.
    auto superseded = std::erase_if(st.unsent,
                                    [&](auto& x) { return x.first == i; });
    es.skipped += d.skipped + superseded;
    if (d.skipped + superseded > 0)
      spdlog::warn("cron: entry '{}' missed {} tick(s); sending only the "
                   "latest, {}",
                   es.entry.name, d.skipped + superseded,
                   format_utc_ms(*d.fire));
    st.unsent.emplace_back(i, make_cron_task(es.entry, *d.fire,
                                             now_unix_us(),
                                             st.opts.default_queue, st.origin));
  }
}

void flush_unsent(self_ptr self) {
  auto& st = self->state;
  if (st.unsent.empty())
    return;
  auto now = steady::now();
  if (!st.conn) {
    if (now < st.next_broker_connect)
      return;
    auto conn = connect_broker(st.opts.broker_url, st.opts.broker_timeout);
    if (!conn) {
      st.broker_backoff = std::clamp(st.broker_backoff * 2, milliseconds{100},
                                     milliseconds{5000});
      st.next_broker_connect = now + st.broker_backoff;
      auto text = error_text(conn.error());
      if (st.counters.last_error != text)
        spdlog::warn("cron: broker unavailable: {}; retrying", text);
      st.counters.fail(std::move(text));
      return;
    }
    st.broker_backoff = milliseconds{0};
    st.conn = std::move(*conn);
  }
  // Drop what expired while the broker was away.
  auto now_us = now_unix_us();
  std::erase_if(st.unsent, [&](auto& x) {
    if (x.second.msg.expires_us == 0 || x.second.msg.expires_us > now_us)
      return false;
    spdlog::warn("cron: entry '{}': dropping an unsent task that expired",
                 st.entries[x.first].entry.name);
    return true;
  });
  std::vector<outgoing_task> batch;
  for (auto& [i, task] : st.unsent)
    batch.push_back(task);
  if (batch.empty())
    return;
  if (auto err = st.conn->publish(batch)) {
    auto text = error_text(err);
    spdlog::warn("cron: publishing to {} failed: {}; retrying",
                 st.conn->describe(), text);
    st.counters.fail(std::move(text));
    st.conn.reset();
    st.broker_backoff = std::clamp(st.broker_backoff * 2, milliseconds{100},
                                   milliseconds{5000});
    st.next_broker_connect = now + st.broker_backoff;
    return;
  }
  for (auto& [i, task] : st.unsent) {
    auto& es = st.entries[i];
    ++es.fired;
    ++st.fired;
    ++st.counters.processed;
    spdlog::debug("cron: sent {} [{}] for entry '{}' to queue '{}'",
                  task.msg.task, task.msg.id, es.entry.name, task.queue);
  }
  st.unsent.clear();
}

void schedule_next(self_ptr self) {
  auto& st = self->state;
  auto now = now_ms();
  auto wake = now + 60000; // look again at least once a minute
  if (!st.lock || st.held)
    for (auto& es : st.entries)
      if (es.next_ms)
        wake = std::min(wake, *es.next_ms);
  auto steady_now = steady::now();
  auto in = [&](steady::time_point t) {
    return now
           + std::chrono::duration_cast<milliseconds>(t - steady_now).count();
  };
  if (st.lock)
    wake = std::min(wake, in(st.next_lock_step));
  if (!st.unsent.empty())
    wake = std::min(wake, std::max(now + 100, in(st.next_broker_connect)));
  // One millisecond late rather than early: a tick is due at its time.
  auto delay = std::clamp<int64_t>(wake - now + 1, 1, 60001);
  self->delayed_send(self, milliseconds{delay}, poll_atom_v);
}

void poll(self_ptr self) {
  auto& st = self->state;
  if (st.stopping)
    return;
  if (st.lock)
    lock_step(self);
  if (!st.lock || st.held)
    fire_due(self);
  flush_unsent(self);
  schedule_next(self);
}

} // namespace

cron_scheduler_actor::behavior_type
cron_scheduler(cron_scheduler_actor::stateful_pointer<cron_scheduler_state> self,
               cron_scheduler_options opts) {
  auto& st = self->state;
  st.opts = std::move(opts);
  st.origin = "vigil@" + hostname();
  auto start = now_ms();
  for (auto& e : st.opts.entries)
    st.entries.push_back(cron_entry_state{std::move(e), start, false, {}, 0, 0});
  st.opts.entries.clear();
  if (!st.opts.lock_url.empty())
    st.lock = std::make_unique<redis_lock>(st.opts.lock_key, st.opts.lock_ttl);
  self->send(self, poll_atom_v);
  return {
    [=](poll_atom) { poll(self); },
    [=](drain_atom) {
      auto& st = self->state;
      st.stopping = true;
      flush_unsent(self);
      if (!st.unsent.empty())
        spdlog::warn("cron: {} claimed task(s) could not be sent before "
                     "shutdown",
                     st.unsent.size());
      // Compare-and-delete is safe even if the lease was lost meanwhile.
      if (st.lock && (st.held || st.redis)) {
        auto was_held = st.held;
        st.held = false;
        if (ensure_redis(self, true)) {
          auto r = st.lock->release(*st.redis);
          if (!r)
            spdlog::warn("cron: could not release the scheduler lock: {}; "
                         "it expires within {} ms",
                         error_text(r.error()), st.opts.lock_ttl.count());
          else if (*r)
            spdlog::info("cron: released the scheduler lock");
        } else if (was_held) {
          spdlog::warn("cron: could not release the scheduler lock; it "
                       "expires within {} ms",
                       st.opts.lock_ttl.count());
        }
      }
      return true;
    },
    [=](status_atom) {
      auto& st = self->state;
      auto status = make_status(self, st.counters);
      auto& x = status.extra;
      x["entries"] = std::to_string(st.entries.size());
      x["fired"] = std::to_string(st.fired);
      x["fired_elsewhere"] = std::to_string(st.fired_elsewhere);
      x["unsent"] = std::to_string(st.unsent.size());
      if (!st.lock) {
        x["lock"] = "none (single scheduler)";
      } else {
        x["lock"] = st.held ? "held" : "standby";
        x["lock_store"] = st.lock_endpoint ? to_string(*st.lock_endpoint)
                                           : std::string{"(not connected)"};
        x["lock_acquired"] = std::to_string(st.lock_acquired);
        x["lock_lost"] = std::to_string(st.lock_lost);
      }
      x["broker"] = st.conn ? st.conn->describe() : "(not connected)";
      for (auto& es : st.entries) {
        auto text = es.entry.timing.describe() + ", fired "
                    + std::to_string(es.fired) + ", skipped "
                    + std::to_string(es.skipped);
        if (es.next_ms)
          text += ", next " + format_utc_ms(*es.next_ms);
        x["entry." + es.entry.name] = std::move(text);
      }
      return status;
    },
  };
}

} // namespace vigil
