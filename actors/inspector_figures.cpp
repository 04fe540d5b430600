#include "actors/inspector_figures.hpp"

#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "actors/backends/broker.hpp"
#include "actors/backends/rate_limiter.hpp"
#include "adapters/redis.hpp"
#include "messages/clock.hpp"
#include "messages/errors.hpp"
#include "messages/json_writer.hpp"

namespace vigil {

namespace {

using json = nlohmann::json;

/// kombu's hash of unacknowledged deliveries: tag -> [envelope, exchange,
/// routing key] (see actors/backends/broker_redis.cpp).
constexpr const char* kombu_unacked_key = "unacked";

/// Past this many unacknowledged deliveries their queues are not counted
/// one by one (the total is still shown).
constexpr int64_t max_unacked_read = 10000;

/// Quota rows at most (one per tracked counter).
constexpr size_t max_quota_rows = 200;

json error_section(const caf::error& err) {
  return json{{"error", error_text(err)}};
}

class figures final : public service_figures {
public:
  explicit figures(figures_options opts) : opts_(std::move(opts)) {
    // nop
  }

  std::string collect() override {
    json out = json::object();
    if (!opts_.broker_url.empty())
      broker_sections(out);
    if (opts_.buffer)
      out["buffer"] = buffer_section();
    if (!opts_.digests_url.empty())
      out["digests"] = digests_section();
    if (opts_.quotas)
      out["quotas"] = quotas_section();
    if (!opts_.rate_limiter_url.empty() && !opts_.rate_limits.empty())
      out["rate_limits"] = rate_limits_section();
    if (!opts_.cron_entries.empty())
      out["cron"] = cron_section();
    return dump_json(out);
  }

private:
  /// A Redis connection kept across calls (`slot`), opened again when
  /// broken.
  redis_connection* redis(std::optional<redis_connection>& slot,
                          const std::string& url, caf::error& err) {
    if (slot && slot->ok())
      return &*slot;
    slot.reset();
    auto ep = parse_redis_url(url);
    if (!ep) {
      err = ep.error();
      return nullptr;
    }
    auto c = redis_connection::connect(*ep, opts_.timeout);
    if (!c) {
      err = c.error();
      return nullptr;
    }
    slot = std::move(*c);
    return &*slot;
  }

  broker* the_broker(caf::error& err) {
    if (broker_)
      return broker_.get();
    auto b = connect_broker(opts_.broker_url, opts_.timeout);
    if (!b) {
      err = b.error();
      return nullptr;
    }
    broker_ = std::move(*b);
    return broker_.get();
  }

  void broker_sections(json& out) {
    caf::error err;
    auto* b = the_broker(err);
    if (!b) {
      out["queues"] = json::array();
      out["queues_error"] = error_text(err);
      return;
    }
    auto kind = opts_.broker_url.substr(0, opts_.broker_url.find(':'));
    std::map<std::string, int64_t> unacked;
    bool per_queue = false;
    if (kind == "redis") {
      // The unacked hash names each delivery's routing key (the queue).
      if (auto* c = redis(redis_broker_, opts_.broker_url, err)) {
        auto n = c->command({"HLEN", kombu_unacked_key});
        if (n && n->as_int() <= max_unacked_read) {
          auto all = c->command({"HVALS", kombu_unacked_key});
          if (all) {
            per_queue = true;
            for (auto v : all->elements()) {
              auto doc = json::parse(v.as_string(), nullptr, false);
              if (doc.is_array() && doc.size() >= 3 && doc[2].is_string())
                ++unacked[doc[2].get<std::string>()];
            }
          }
        }
      }
    }
    json queues = json::array();
    for (auto& q : opts_.queues) {
      json row{{"name", q}, {"broker", kind}};
      auto n = b->queue_length(q);
      if (!n) {
        row["error"] = error_text(n.error());
        broker_.reset(); // opened again next time
        queues.push_back(std::move(row));
        break;
      }
      row["ready"] = *n;
      if (per_queue)
        row["unacked"] = unacked[q];
      else if (kind == "memory")
        row["unacked"] = nullptr; // one figure for every queue, below
      queues.push_back(std::move(row));
    }
    out["queues"] = std::move(queues);
    if (!broker_)
      return;
    if (!per_queue && kind != "amqp")
      if (auto n = b->unacked_count())
        out["unacked"] = *n;
    // The dead letters: Redis keeps them in one list; other brokers list.
    json dead{{"url", opts_.dead_letters_path}};
    if (kind == "redis") {
      if (auto* c = redis(redis_broker_, opts_.broker_url, err)) {
        auto n = c->command({"LLEN", "vigil.dead_letters"});
        if (n)
          dead["count"] = n->as_int();
        else
          dead["error"] = error_text(n.error());
      } else {
        dead["error"] = error_text(err);
      }
    } else if (auto all = b->list_dead_letters()) {
      dead["count"] = all->size();
    } else {
      dead["error"] = error_text(all.error());
    }
    out["dead_letters"] = std::move(dead);
  }

  json buffer_section() {
    if (!buffer_) {
      auto b = make_buffer_backend(*opts_.buffer);
      if (!b)
        return error_section(b.error());
      buffer_ = std::move(*b);
    }
    size_t total = 0;
    for (int p = 0; p < std::max(1, opts_.buffer->partitions); ++p) {
      auto n = buffer_->pending_count(p);
      if (!n) {
        buffer_.reset();
        return error_section(n.error());
      }
      total += *n;
    }
    return json{{"pending_keys", total}, {"backend", opts_.buffer->backend}};
  }

  json digests_section() {
    caf::error err;
    auto* c = redis(redis_digests_, opts_.digests_url, err);
    if (!c)
      return error_section(err);
    auto waiting = opts_.digests_namespace + ":s:w";
    auto ready = opts_.digests_namespace + ":s:r";
    auto now = std::to_string(now_unix_seconds());
    c->append({"ZCARD", waiting});
    c->append({"ZCARD", ready});
    c->append({"ZCOUNT", waiting, "-inf", now});
    auto r = c->flush();
    if (!r)
      return error_section(r.error());
    if (auto e = check_replies(*r, "digests"))
      return error_section(e);
    auto w = (*r)[0].as_int(), rd = (*r)[1].as_int(), due = (*r)[2].as_int();
    return json{{"timelines", w + rd}, {"waiting", w}, {"ready", rd},
                {"due", rd + due}};
  }

  /// Every tracked quota of every project and key once (an organization's
  /// quota is one counter for all of its projects).
  json quotas_section() {
    if (!quotas_) {
      auto b = make_quota_backend(*opts_.quotas);
      if (!b)
        return error_section(b.error());
      quotas_ = std::move(*b);
    }
    json rows = json::array();
    std::set<std::string> seen;
    for (auto& p : opts_.catalog.projects) {
      std::vector<uint64_t> keys;
      for (auto& k : p.keys)
        keys.push_back(k.id);
      if (keys.empty())
        keys.push_back(0);
      for (auto key : keys) {
        quota_scoping sc{p.organization, p.id, key, "error"};
        for (auto& q : opts_.catalog.quotas_for(p.id, key)) {
          if (q.id.empty() || rows.size() >= max_quota_rows)
            continue;
          auto owner = q.scope == quota_scope::organization ? p.organization
                       : q.scope == quota_scope::project    ? p.id
                       : q.scope == quota_scope::key        ? key
                                                            : 0;
          if (!seen.insert(q.id + "/" + to_string(q.scope) + "/"
                           + std::to_string(owner))
                 .second)
            continue;
          auto used = quotas_->get_usage(sc, q);
          if (!used) {
            quotas_.reset();
            rows.push_back(json{{"id", q.id}, {"error", error_text(used.error())}});
            return rows;
          }
          rows.push_back(json{{"project", p.id},
                              {"organization", p.organization},
                              {"key", key},
                              {"id", q.id},
                              {"scope", to_string(q.scope)},
                              {"limit", q.limit},
                              {"window", q.window},
                              {"used", *used}});
        }
      }
    }
    return rows;
  }

  /// Each limit's count in its current bucket, read (GET) where the Redis
  /// limiter counts it (rate_limit_key), never counted.
  json rate_limits_section() {
    caf::error err;
    auto* c = redis(redis_limiter_, opts_.rate_limiter_url, err);
    if (!c)
      return error_section(err);
    auto now = static_cast<int64_t>(now_unix_seconds());
    std::vector<std::string> keys;
    for (auto& l : opts_.rate_limits) {
      auto window = l.window > 0 ? l.window : rate_limit_default_window;
      keys.push_back(rate_limit_key(l, now / window));
    }
    for (auto& k : keys)
      c->append({"GET", k});
    auto r = c->flush();
    if (!r)
      return error_section(r.error());
    json rows = json::array();
    for (size_t i = 0; i < opts_.rate_limits.size(); ++i) {
      auto& l = opts_.rate_limits[i];
      auto& v = (*r)[i];
      int64_t used = 0;
      if (v.is_string())
        used = std::strtoll(std::string{v.as_string()}.c_str(), nullptr, 10);
      json row{{"key", l.key},
               {"limit", l.limit},
               {"window", l.window > 0 ? l.window : rate_limit_default_window},
               {"used", used}};
      if (l.project_id != 0)
        row["project"] = l.project_id;
      rows.push_back(std::move(row));
    }
    return rows;
  }

  json cron_section() {
    json out = json::object();
    json entries = json::array();
    auto now_ms = now_unix_us() / 1000;
    for (auto& e : opts_.cron_entries) {
      json row{{"name", e.name}, {"task", e.task},
               {"schedule", e.timing.describe()}};
      if (auto t = e.timing.tick_after(now_ms))
        row["next"] = static_cast<double>(*t) / 1000.0;
      entries.push_back(std::move(row));
    }
    out["entries"] = std::move(entries);
    if (opts_.cron_lock_url.empty()) {
      out["lock_holder"] = nullptr;
      out["lock"] = "none (a single scheduler)";
      return out;
    }
    caf::error err;
    auto* c = redis(redis_cron_, opts_.cron_lock_url, err);
    if (!c) {
      out["error"] = error_text(err);
      return out;
    }
    auto r = c->command({"GET", opts_.cron_lock_key});
    if (!r) {
      out["error"] = error_text(r.error());
      return out;
    }
    // The token is "<host>/<pid>/<uuid>" (adapters/redis_lock.cpp): the
    // holder is the process, not this lease.
    if (r->is_string()) {
      std::string token{r->as_string()};
      auto cut = token.rfind('/');
      out["lock_holder"] = cut == std::string::npos ? token
                                                    : token.substr(0, cut);
    } else {
      out["lock_holder"] = nullptr;
    }
    return out;
  }

  figures_options opts_;
  std::unique_ptr<broker> broker_;
  std::unique_ptr<buffer_backend> buffer_;
  std::unique_ptr<quota_backend> quotas_;
  std::optional<redis_connection> redis_broker_;
  std::optional<redis_connection> redis_digests_;
  std::optional<redis_connection> redis_cron_;
  std::optional<redis_connection> redis_limiter_;
};

} // namespace

std::shared_ptr<service_figures> make_service_figures(figures_options opts) {
  return std::make_shared<figures>(std::move(opts));
}

} // namespace vigil
