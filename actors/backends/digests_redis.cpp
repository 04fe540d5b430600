// Sentry's RedisBackend for digests: the keys of namespace `d` (see
// digests_redis_scripts.hpp), every command one call of one Lua script so
// that each is atomic. `add_many` is the hot path: each record's value is
// a plain SET (before the script call that names the record, on the same
// connection), its id and the schedule go to the script in slices (a bound
// on how long one call holds the server), all pipelined in one round trip.
//
// Beyond Sentry's steps, the lock is taken inside DIGEST_OPEN and checked
// and released inside DIGEST_CLOSE (one round trip each, and no gap
// between the lock and the state it guards), and a close comes after the
// delivery, not before it: at least once instead of at most once.

#include <charconv>
#include <deque>
#include <unordered_map>

#include "actors/backends/digests.hpp"
#include "actors/backends/digests_redis_scripts.hpp"
#include "adapters/redis.hpp"
#include "adapters/redis_session.hpp"
#include "messages/clock.hpp"
#include "messages/errors.hpp"

namespace vigil {

namespace {

// Records per script call; and bytes of values, so that a slice of large
// records holds the server no longer than a slice of small ones.
constexpr size_t max_records_per_call = 1000;
constexpr size_t max_bytes_per_call = 4 << 20;

std::string format_seconds(double x) {
  char buf[32];
  auto res = std::to_chars(buf, buf + sizeof(buf), x);
  return std::string(buf, static_cast<size_t>(res.ptr - buf));
}

double parse_seconds(std::string_view text) {
  double x = 0;
  std::from_chars(text.data(), text.data() + text.size(), x);
  return x;
}

// The error a script's refusal means: errc::unavailable for the lock,
// errc::not_found for a timeline not ready.
caf::error script_error(const redis_value& r, std::string_view what) {
  auto text = r.error_text();
  if (text.find("err(locked)") != std::string::npos)
    return caf::make_error(errc::unavailable, std::string{what} + ": " + text);
  if (text.find("err(invalid_state)") != std::string::npos)
    return caf::make_error(errc::not_found, std::string{what} + ": " + text);
  return caf::make_error(errc::command_failed, std::string{what} + ": " + text);
}

class redis_digests final : public digest_backend {
public:
  redis_digests(const digest_backend_options& o, redis_endpoint ep)
    : opts_(o),
      ttl_text_(std::to_string(o.ttl.count())),
      capacity_text_(std::to_string(o.capacity)),
      chance_text_(format_seconds(o.effective_truncation_chance())),
      lock_ttl_text_(std::to_string(o.lock_ttl.count())),
      session_(std::move(ep), o.timeout),
      script_{std::string{digests_scripts::digests_lua}} {
  }

  std::string describe() const override {
    return "redis digests " + session_.describe() + " (namespace "
           + opts_.key_namespace + ")";
  }

  caf::expected<bool> add(const digest_add& x, double now) override {
    auto r = add_many({x}, now);
    if (!r)
      return r.error();
    return r->front();
  }

  caf::expected<std::vector<bool>>
  add_many(const std::vector<digest_add>& xs, double now) override {
    std::vector<bool> out;
    if (xs.empty())
      return out;
    auto conn = session_.get();
    if (!conn)
      return conn.error();
    // Loaded before anything is queued (loading takes a round trip).
    if (auto err = (*conn)->preload(script_)) {
      session_.reset();
      return err;
    }
    // Texts the arguments point into; a deque keeps them in place.
    std::deque<std::string> texts;
    auto keep = [&](std::string s) -> std::string_view {
      texts.push_back(std::move(s));
      return texts.back();
    };
    auto now_text = keep(format_seconds(now));
    // Delays repeat (the defaults, or a project's): format each once.
    double last_inc = -1, last_max = -1;
    std::string_view inc_text, max_text;
    std::vector<size_t> slice_sizes;
    std::vector<std::string_view> args;
    std::vector<std::string_view> keys{"-"};
    auto start = [&] {
      args.assign({"ADD_MANY", opts_.key_namespace, ttl_text_, now_text,
                   capacity_text_, chance_text_});
    };
    start();
    // The records of one timeline together (first seen first, their own
    // order kept), so that a script call reads and writes each timeline's
    // schedule once for all of them; timelines are independent, so every
    // answer is the one adds in the given order would get.
    std::vector<uint32_t> sequence;
    sequence.reserve(xs.size());
    {
      std::unordered_map<std::string_view, std::vector<uint32_t>> groups;
      std::vector<std::string_view> first_seen;
      for (uint32_t i = 0; i < xs.size(); ++i) {
        auto [it, fresh] = groups.try_emplace(xs[i].key);
        if (fresh)
          first_seen.push_back(xs[i].key);
        it->second.push_back(i);
      }
      for (auto k : first_seen)
        for (auto i : groups[k])
          sequence.push_back(i);
    }
    size_t in_slice = 0, bytes = 0;
    for (auto index : sequence) {
      const auto& x = xs[index];
      if (x.increment_delay != last_inc) {
        last_inc = x.increment_delay;
        inc_text = keep(format_seconds(last_inc));
      }
      if (x.maximum_delay != last_max) {
        last_max = x.maximum_delay;
        max_text = keep(format_seconds(last_max));
      }
      // The value first, as a plain SET on the same connection: the
      // script that names the record in its timeline runs after it.
      std::string record_key;
      record_key.reserve(opts_.key_namespace.size() + x.key.size()
                         + x.record.id.size() + 6);
      record_key.append(opts_.key_namespace)
        .append(":t:")
        .append(x.key)
        .append(":r:")
        .append(x.record.id);
      (*conn)->append({"SET", keep(std::move(record_key)), x.record.value,
                       "EX", ttl_text_});
      args.insert(args.end(),
                  {std::string_view{x.key}, std::string_view{x.record.id},
                   keep(format_seconds(x.record.timestamp)), inc_text,
                   max_text});
      ++in_slice;
      bytes += x.record.value.size();
      if (in_slice == max_records_per_call || bytes >= max_bytes_per_call) {
        (*conn)->append_eval(script_, keys, args);
        slice_sizes.push_back(in_slice);
        start();
        in_slice = 0;
        bytes = 0;
      }
    }
    if (in_slice > 0) {
      (*conn)->append_eval(script_, keys, args);
      slice_sizes.push_back(in_slice);
    }
    auto replies = session_.flush();
    if (!replies)
      return replies.error();
    out.assign(xs.size(), false);
    // A failed slice fails the call: the caller retries the whole batch,
    // and a record added twice is stored once (same id).
    // Each slice's replies: one per SET, then the script's.
    size_t next = 0;
    size_t at = 0;
    for (size_t i = 0; i < slice_sizes.size(); ++i) {
      at += slice_sizes[i];
      if (at >= replies->size())
        return caf::make_error(errc::command_failed,
                               "digests add: replies missing");
      for (size_t k = at - slice_sizes[i]; k < at; ++k)
        if ((*replies)[k].is_error())
          return script_error((*replies)[k], "digests add");
      const auto& r = (*replies)[at++];
      if (r.is_error())
        return script_error(r, "digests add");
      auto flags = r.as_string();
      if (flags.size() != slice_sizes[i])
        return caf::make_error(errc::command_failed,
                               "digests add: unexpected reply");
      for (auto c : flags) {
        out[sequence[next++]] = c == '1';
        stats_.ready_at_once += c == '1' ? 1 : 0;
      }
    }
    stats_.records_added += xs.size();
    return out;
  }

  caf::expected<std::vector<digest_schedule_entry>>
  schedule(double deadline, double now) override {
    auto r = run("digests schedule", {"SCHEDULE", format_seconds(deadline)},
                 now);
    if (!r)
      return r.error();
    std::vector<digest_schedule_entry> out;
    out.reserve(r->size() / 2);
    for (size_t i = 0; i + 1 < r->size(); i += 2)
      out.push_back({std::string{(*r)[i].as_string()},
                     parse_seconds((*r)[i + 1].as_string())});
    stats_.scheduled += out.size();
    return out;
  }

  caf::error maintenance(double deadline, double now) override {
    auto r = run("digests maintenance",
                 {"MAINTENANCE", format_seconds(deadline)}, now);
    return r ? caf::error{} : r.error();
  }

  caf::expected<digest_lease>
  open_digest(const std::string& key, double minimum_delay,
              double now) override {
    digest_lease lease;
    lease.key = key;
    lease.lock_token = new_uuid4();
    lease.minimum_delay = minimum_delay;
    auto r = run("digests open",
                 {"DIGEST_OPEN", key, capacity_text_, lease.lock_token,
                  lock_ttl_text_},
                 now);
    if (!r) {
      if (is_digest_locked(r.error()))
        ++stats_.locked;
      else if (is_digest_not_ready(r.error()))
        ++stats_.not_ready;
      return r.error();
    }
    for (size_t i = 0; i + 2 < r->size(); i += 3) {
      auto id = std::string{(*r)[i].as_string()};
      const auto value = (*r)[i + 1];
      if (!value.is_nil())
        lease.records.push_back({id, std::string{value.as_string()},
                                 parse_seconds((*r)[i + 2].as_string())});
      lease.ids.push_back(std::move(id));
    }
    ++stats_.opened;
    return lease;
  }

  caf::error close_digest(const digest_lease& lease, double now) override {
    std::vector<std::string> args{"DIGEST_CLOSE", lease.key, lease.lock_token,
                                  format_seconds(lease.minimum_delay)};
    args.insert(args.end(), lease.ids.begin(), lease.ids.end());
    auto r = run("digests close", std::move(args), now);
    if (!r)
      return r.error();
    ++stats_.closed;
    stats_.records_delivered += lease.records.size();
    return {};
  }

  caf::error release_digest(const digest_lease& lease) override {
    auto r = run("digests release", {"RELEASE", lease.key, lease.lock_token},
                 0);
    return r ? caf::error{} : r.error();
  }

  caf::error delete_timeline(const std::string& key, double now) override {
    auto r = run("digests delete", {"DELETE", key}, now);
    return r ? caf::error{} : r.error();
  }

  digest_backend_stats stats() const override {
    return stats_;
  }

private:
  // One script call: ARGV = command, namespace, ttl, now, then `rest`
  // after the command.
  caf::expected<redis_reply> run(std::string_view what,
                                 std::vector<std::string> rest, double now) {
    auto conn = session_.get();
    if (!conn)
      return conn.error();
    auto now_text = format_seconds(now);
    std::vector<std::string_view> args{rest.front(), opts_.key_namespace,
                                       ttl_text_, now_text};
    args.insert(args.end(), rest.begin() + 1, rest.end());
    (*conn)->append_eval(script_, {"-"}, args);
    auto replies = session_.flush();
    if (!replies)
      return replies.error();
    if (replies->empty())
      return caf::make_error(errc::command_failed,
                             std::string{what} + ": no reply");
    auto& r = replies->front();
    if (r.is_error())
      return script_error(r, what);
    return std::move(r);
  }

  digest_backend_options opts_;
  std::string ttl_text_;
  std::string capacity_text_;
  std::string chance_text_;
  std::string lock_ttl_text_;
  redis_session session_;
  redis_script script_;
  digest_backend_stats stats_;
};

} // namespace

caf::expected<std::unique_ptr<digest_backend>>
make_redis_digest_backend(const digest_backend_options& o) {
  auto ep = parse_redis_url(o.url);
  if (!ep)
    return ep.error();
  return std::unique_ptr<digest_backend>{
    std::make_unique<redis_digests>(o, std::move(*ep))};
}

} // namespace vigil
