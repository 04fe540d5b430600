#include "actors/digest_delivery.hpp"
#include "actors/metrics.hpp"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <map>
#include <set>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "actors/backends/broker.hpp"
#include "actors/backends/event_store.hpp"
#include "actors/chart_config_loader.hpp"
#include "actors/chart_renderer.hpp"
#include "actors/mailer.hpp"
#include "actors/rate_limiter.hpp"
#include "actors/reply_address.hpp"
#include "actors/tsdb.hpp"
#include "config/config.hpp"
#include "messages/clock.hpp"
#include "messages/errors.hpp"
#include "messages/internal_task.hpp"
#include "messages/json_writer.hpp"

namespace vigil {

namespace {

/// What a worker thread keeps between digest tasks; dropped after a
/// failure so that the next task reconnects.
struct digest_thread_state {
  std::unique_ptr<digest_backend> store;
  std::unique_ptr<event_store> events;
  std::unique_ptr<tsdb_backend> tsdb;
  std::unique_ptr<broker> conn;
  std::unique_ptr<mail_backend> mail;
  std::unique_ptr<rate_limiter_backend> limiter;
};

digest_thread_state& thread_state() {
  thread_local digest_thread_state st;
  return st;
}

caf::expected<digest_backend*> thread_store(const digest_delivery_options& o) {
  auto& st = thread_state();
  if (!st.store) {
    auto b = make_digest_backend(o.store);
    if (!b)
      return b.error();
    st.store = std::move(*b);
  }
  return st.store.get();
}

caf::expected<event_store*> thread_events(const digest_delivery_options& o) {
  auto& st = thread_state();
  if (!st.events) {
    auto s = event_store::open(o.db_url, o.db_options);
    if (!s)
      return s.error();
    st.events = std::move(*s);
  }
  return st.events.get();
}

caf::expected<tsdb_backend*> thread_tsdb(const digest_delivery_options& o) {
  auto& st = thread_state();
  if (!st.tsdb) {
    auto t = make_tsdb_backend(o.tsdb);
    if (!t)
      return t.error();
    st.tsdb = std::move(*t);
  }
  return st.tsdb.get();
}

caf::expected<broker*> thread_broker(const digest_delivery_options& o) {
  auto& st = thread_state();
  if (!st.conn) {
    auto b = connect_broker(o.broker_url, std::chrono::seconds{5});
    if (!b)
      return b.error();
    st.conn = std::move(*b);
  }
  return st.conn.get();
}

caf::expected<mail_backend*> thread_mail(const digest_delivery_options& o) {
  auto& st = thread_state();
  if (!st.mail) {
    auto m = make_mail_backend(o.mail);
    if (!m)
      return m.error();
    st.mail = std::move(*m);
  }
  return st.mail.get();
}

caf::expected<rate_limiter_backend*>
thread_limiter(const digest_delivery_options& o) {
  auto& st = thread_state();
  if (!st.limiter) {
    auto l = make_rate_limiter_backend(o.limiter);
    if (!l)
      return l.error();
    st.limiter = std::move(*l);
  }
  return st.limiter.get();
}

/// Seconds until the rate limit's next window when project `id` may not
/// be notified now; nullopt when it may (or there is no limit). A limiter
/// that fails lets the mail through, as Sentry's fails open.
std::optional<double> limited_for(const digest_delivery_options& o,
                                  uint64_t id) {
  if (o.rate_limit <= 0)
    return std::nullopt;
  auto l = thread_limiter(o);
  rate_limit_check c{"digests:notifications", o.rate_limit,
                     o.rate_limit_window, id};
  auto r = l ? (*l)->is_limited_batch({c})
             : caf::expected<std::vector<rate_limit_result>>{l.error()};
  if (!r || r->empty()) {
    thread_state().limiter.reset();
    spdlog::warn("digests: the rate limiter failed; sending anyway: {}",
                 error_text(r ? caf::make_error(errc::malformed, "no answer")
                              : r.error()));
    return std::nullopt;
  }
  if (!r->front().limited)
    return std::nullopt;
  auto w = static_cast<double>(o.rate_limit_window);
  return w - std::fmod(now_unix_seconds(), w) + 1;
}

/// A failure that a later try may get past: the connections are dropped
/// and the task retried.
task_result retry_later(std::string what, const caf::error& err,
                        double delay = 10) {
  thread_state() = digest_thread_state{};
  spdlog::warn("digests: {} failed; retrying in {} s: {}", what, delay,
               error_text(err));
  return task_result::retry_after(delay, what + ": " + error_text(err));
}

caf::error send_deliver(const digest_delivery_options& o,
                        const std::string& key, double timestamp) {
  auto b = thread_broker(o);
  if (!b)
    return b.error();
  auto task = make_internal_task(deliver_digest_task, o.delivery_queue,
                                 value_map{{"key", key},
                                           {"schedule_timestamp", timestamp}},
                                 "vigil@digests");
  auto err = (*b)->publish({std::move(task)});
  if (err)
    thread_state().conn.reset();
  return err;
}

/// One issue's records and what the mail says of it.
struct issue_entry {
  digest_issue view;
  double newest = 0;
  std::string newest_event;
};

/// The level of a stored event ("error" when it says none).
std::string event_level(event_store& events, uint64_t project_id,
                        const std::string& event_id) {
  auto json = events.get_event(project_id, event_id);
  if (!json || !*json)
    return "error";
  auto doc = nlohmann::json::parse(**json, nullptr, false);
  if (doc.is_object() && doc.contains("level") && doc["level"].is_string())
    return doc["level"].get<std::string>();
  return "error";
}

/// The PNG of a group's events over the last `period` seconds to `end`.
std::string issue_chart(tsdb_backend& tsdb, const std::vector<tsdb_rollup>& rollups,
                        int64_t group_id, int64_t period, int64_t end) {
  if (rollups.empty())
    return {};
  auto range = tsdb_chart_range(rollups, period, end, 400);
  auto series = tsdb.get_range(tsdb_model::group, {tsdb_key::of(group_id)},
                               range);
  if (!series || series->empty())
    return {};
  auto data = nlohmann::json::array();
  for (const auto& [ts, n] : series->front())
    data.push_back({ts, {{{"count", n}}}});
  nlohmann::json body = {{"requestId", "digest"},
                         {"style", "vigil:issue.eventsOverTime"},
                         {"data", {{"data", std::move(data)}}}};
  auto cfg = builtin_chart_config();
  auto reply = render_chart_body(cfg.get(), dump_json(body));
  return reply.status == 200 ? std::move(reply.body) : std::string{};
}

std::string rule_label(const project_config& p, const std::string& id) {
  for (const auto& r : p.alert_rules)
    if (r.id == id)
      return r.label.empty() ? r.id : r.label;
  return id;
}

/// What one delivery did.
struct delivery_outcome {
  /// Nothing to do (not ready, empty, another node delivering).
  bool skipped = false;
  /// Sent to this many recipients.
  size_t recipients = 0;
  size_t issues = 0;
};

/// The mail of an open digest: nullopt when nothing is left to say (no
/// unresolved issue, nobody to tell).
caf::expected<std::optional<mail_message>>
build_mail(const digest_delivery_options& o, const project_config& project,
           const organization_config& org, const digest_lease& lease) {
  auto events = thread_events(o);
  if (!events)
    return events.error();
  auto tsdb = thread_tsdb(o);
  if (!tsdb)
    return tsdb.error();
  // Sentry's pipeline: records → their groups (missing ones dropped) →
  // unresolved only → {rule: {group: records}}.
  std::map<int64_t, issue_entry> issues;
  std::map<std::string, std::set<int64_t>> by_rule;
  std::vector<std::string> rule_order;
  double start = 0, end = 0;
  for (const auto& rec : lease.records) {
    auto r = decode_alert_record(rec.value);
    if (!r) {
      spdlog::warn("digests: {}: record {} is not an alert record, left "
                   "out: {}",
                   lease.key, rec.id, error_text(r.error()));
      continue;
    }
    auto it = issues.find(r->group_id);
    if (it == issues.end()) {
      auto g = (*events)->get_group(r->group_id);
      if (!g)
        return g.error();
      if (!*g || (*g)->status != "unresolved")
        continue;
      issue_entry e;
      e.view.group_id = r->group_id;
      e.view.title = (*g)->title;
      e.view.culprit = (*g)->culprit;
      it = issues.emplace(r->group_id, std::move(e)).first;
    }
    if (r->timestamp >= it->second.newest) {
      it->second.newest = r->timestamp;
      it->second.newest_event = r->event_id;
    }
    start = start == 0 ? r->timestamp : std::min(start, r->timestamp);
    end = std::max(end, r->timestamp);
    for (const auto& rule : r->rule_ids) {
      if (!by_rule.count(rule))
        rule_order.push_back(rule);
      by_rule[rule].insert(r->group_id);
    }
  }
  if (issues.empty())
    return std::optional<mail_message>{};
  std::vector<std::string> to;
  for (const auto* m : project_members(org, project.slug))
    to.push_back(m->email);
  if (to.empty()) {
    spdlog::info("digests: {}: organization {} has no member for project "
                 "{}; nothing sent",
                 lease.key, org.slug, project.slug);
    return std::optional<mail_message>{};
  }
  // Counts over the records' span (Sentry's build_digest: get_sums and
  // the distinct users over [oldest, newest]).
  std::vector<tsdb_key> keys;
  for (const auto& [id, e] : issues)
    keys.push_back(tsdb_key::of(id));
  tsdb_range range;
  range.start = static_cast<int64_t>(std::floor(start));
  range.end = static_cast<int64_t>(std::ceil(end));
  range.rollup = tsdb_optimal_rollup(o.tsdb.rollups, range.start, range.end)
                   .seconds;
  // The series walk back from `end` in whole buckets while not before
  // `start`: from its bucket's start, the first record's bucket is in.
  range.start = tsdb_bucket_start(range.start, range.rollup);
  auto sums = (*tsdb)->get_range(tsdb_model::group, keys, range);
  if (!sums)
    return sums.error();
  auto users = (*tsdb)->get_distinct_counts_totals(
    tsdb_model::users_affected_by_group, keys, range);
  if (!users)
    return users.error();
  auto totals = tsdb_sums(*sums);
  size_t i = 0;
  auto chart_end = static_cast<int64_t>(std::ceil(end));
  auto period = std::max<int64_t>(3600, chart_end - range.start);
  for (auto& [id, e] : issues) {
    e.view.event_count = i < totals.size() ? totals[i] : 0;
    e.view.user_count = i < users->size() ? (*users)[i] : 0;
    // The TSDB may lag the records by a flush: never fewer than the
    // records themselves say.
    e.view.event_count = std::max<int64_t>(e.view.event_count, 1);
    e.view.level = event_level(**events, project.id, e.newest_event);
    if (o.charts)
      e.view.chart_png = issue_chart(**tsdb, o.tsdb.rollups, id, period,
                                     chart_end);
    ++i;
  }
  digest_mail_input in;
  in.org_slug = org.slug;
  in.project_slug = project.slug;
  in.start = start;
  in.end = end;
  in.to = std::move(to);
  in.url_prefix = o.url_prefix;
  in.list_namespace = o.list_namespace;
  for (const auto& rule : rule_order) {
    digest_rule dr;
    dr.id = rule;
    dr.label = rule_label(project, rule);
    for (auto id : by_rule[rule])
      if (auto it = issues.find(id); it != issues.end())
        dr.issues.push_back(it->second.view);
    std::stable_sort(dr.issues.begin(), dr.issues.end(),
                     [](const digest_issue& a, const digest_issue& b) {
                       return std::tie(a.event_count, a.user_count)
                              > std::tie(b.event_count, b.user_count);
                     });
    if (!dr.issues.empty())
      in.rules.push_back(std::move(dr));
  }
  std::stable_sort(in.rules.begin(), in.rules.end(),
                   [](const digest_rule& a, const digest_rule& b) {
                     return a.issues.size() > b.issues.size();
                   });
  if (o.replies && issues.size() == 1)
    in.reply_to = make_reply_address(issues.begin()->first,
                                     static_cast<int64_t>(org.id),
                                     o.secret_key, o.reply_hostname);
  return std::optional<mail_message>{build_digest_mail(in)};
}

task_result deliver(const digest_delivery_options& o, const std::string& key) {
  auto project_id = digest_project(key);
  const auto* project = project_id ? o.catalog->project(*project_id) : nullptr;
  const auto* org = project ? o.catalog->organization(project->organization)
                            : nullptr;
  auto store = thread_store(o);
  if (!store)
    return retry_later("opening the digests store", store.error());
  auto now = now_unix_seconds();
  if (!org) {
    // A project no longer configured: its timeline can never be sent.
    spdlog::warn("digests: {} names no configured project; deleted", key);
    if (auto err = (*store)->delete_timeline(key, now))
      return retry_later("deleting " + key, err);
    return task_result::success(int64_t{0});
  }
  auto minimum_delay = project->digest_delays.minimum_delay > 0
                         ? static_cast<double>(
                           project->digest_delays.minimum_delay)
                         : o.store.minimum_delay;
  auto lease = (*store)->open_digest(key, minimum_delay, now);
  if (!lease) {
    if (is_digest_not_ready(lease.error()))
      return task_result::success(int64_t{0}); // delivered meanwhile
    if (is_digest_locked(lease.error()))
      return task_result::success(int64_t{0}); // another worker has it
    return retry_later("opening digest " + key, lease.error());
  }
  auto mail = build_mail(o, *project, *org, *lease);
  if (!mail) {
    (void) (*store)->release_digest(*lease);
    return retry_later("building digest " + key, mail.error());
  }
  if (*mail) {
    if (auto wait = limited_for(o, project->id)) {
      (void) (*store)->release_digest(*lease);
      spdlog::info("digests: {} is over the notification rate limit ({} per "
                   "{} s); it waits {:.0f} s for the next window",
                   key, o.rate_limit, o.rate_limit_window, *wait);
      return task_result::retry_after(*wait, "notification rate limit");
    }
    auto backend = thread_mail(o);
    if (!backend) {
      (void) (*store)->release_digest(*lease);
      return retry_later("the mail backend", backend.error());
    }
    auto sent = (*backend)->send(**mail);
    if (!sent.sent) {
      (void) (*store)->release_digest(*lease);
      if (!sent.transient)
        return task_result::failure("SMTPRecipientsRefused",
                                    "digest " + key + ": " + sent.message);
      thread_state().mail.reset();
      spdlog::warn("digests: sending {} failed; retrying: {}", key,
                   sent.message);
      return task_result::retry_after(-1, sent.message);
    }
    metrics::incr("email.sent", 1, {{"backend", "digests"}});
    metrics::incr("digests.delivered");
    spdlog::info("digests: delivered {} ({} records) to {} recipient(s): {}",
                 key, lease->records.size(), (*mail)->to.size(),
                 (*mail)->subject);
  }
  if (auto err = (*store)->close_digest(*lease, now_unix_seconds())) {
    // The mail went out: a close that fails sends it again later (at
    // least once).
    return retry_later("closing digest " + key, err);
  }
  return task_result::success(
    static_cast<int64_t>(*mail ? (*mail)->to.size() : 0));
}

task_result schedule(const digest_delivery_options& o) {
  auto store = thread_store(o);
  if (!store)
    return retry_later("opening the digests store", store.error());
  auto now = now_unix_seconds();
  if (auto err = (*store)->maintenance(now - o.maintenance_after, now))
    return retry_later("digest maintenance", err);
  auto due = (*store)->schedule(now, now);
  if (!due)
    return retry_later("scheduling digests", due.error());
  if (due->empty())
    return task_result::success(int64_t{0});
  auto b = thread_broker(o);
  if (!b)
    return retry_later("the broker", b.error());
  std::vector<outgoing_task> out;
  out.reserve(due->size());
  for (const auto& e : *due)
    out.push_back(make_internal_task(
      deliver_digest_task, o.delivery_queue,
      value_map{{"key", e.key}, {"schedule_timestamp", e.timestamp}},
      "vigil@digests"));
  if (auto err = (*b)->publish(out)) {
    // Scheduled but not sent: maintenance returns them to waiting.
    return retry_later("sending deliver tasks", err);
  }
  return task_result::success(static_cast<int64_t>(out.size()));
}

/// The sink of post_process: the record into its timeline, and a delivery
/// at once when the timeline became ready.
class digest_alert_sink final : public alert_sink {
public:
  explicit digest_alert_sink(std::shared_ptr<const digest_delivery_options> o)
    : opts_(std::move(o)) {}

  caf::error fired(const std::string& timeline_key,
                   const alert_record& record) override {
    const auto& o = *opts_;
    auto store = thread_store(o);
    if (!store)
      return store.error();
    digest_add add;
    add.key = timeline_key;
    add.record.id = record.event_id;
    add.record.value = encode_alert_record(record);
    add.record.timestamp = record.timestamp;
    add.increment_delay = o.store.increment_delay;
    add.maximum_delay = o.store.maximum_delay;
    if (const auto* p = o.catalog->project(record.project_id)) {
      if (p->digest_delays.increment_delay > 0)
        add.increment_delay
          = static_cast<double>(p->digest_delays.increment_delay);
      if (p->digest_delays.maximum_delay > 0)
        add.maximum_delay = static_cast<double>(p->digest_delays.maximum_delay);
    }
    auto ready = (*store)->add(add, now_unix_seconds());
    if (!ready) {
      thread_state().store.reset();
      return ready.error();
    }
    if (*ready)
      if (auto err = send_deliver(o, timeline_key, record.timestamp))
        // The record is kept: the schedule finds the ready timeline after
        // the maintenance delay.
        spdlog::warn("digests: could not send the delivery of {} now "
                     "(cron's schedule-digests will): {}",
                     timeline_key, error_text(err));
    return {};
  }

private:
  std::shared_ptr<const digest_delivery_options> opts_;
};

std::string domain_of(const std::string& address) {
  auto at = address.rfind('@');
  auto d = at == std::string::npos ? std::string{"localhost"}
                                   : address.substr(at + 1);
  while (!d.empty() && d.back() == '>')
    d.pop_back();
  return d.empty() ? std::string{"localhost"} : d;
}

} // namespace

std::optional<uint64_t> digest_project(const std::string& key) {
  std::string_view k{key};
  if (!k.starts_with("mail:p:"))
    return std::nullopt;
  k.remove_prefix(7);
  k = k.substr(0, k.find(':'));
  uint64_t id = 0;
  auto res = std::from_chars(k.data(), k.data() + k.size(), id);
  if (k.empty() || res.ec != std::errc{} || res.ptr != k.data() + k.size())
    return std::nullopt;
  return id;
}

caf::expected<digest_delivery_options>
make_digest_delivery_options(const config& cfg) {
  digest_delivery_options out;
  auto store = make_digest_backend_options(cfg);
  if (!store)
    return store.error();
  out.store = std::move(*store);
  out.db_url = effective_db_url(cfg.get_string("db.url"),
                                cfg.get_string("node.data-dir"));
  out.db_options = make_sql_options(cfg.get_string("db.sqlite-synchronous"));
  auto tsdb = make_tsdb_options(cfg);
  if (!tsdb)
    return tsdb.error();
  out.tsdb = std::move(*tsdb);
  out.broker_url = cfg.get_string("broker.url");
  auto catalog = load_quota_catalog(cfg);
  if (!catalog)
    return catalog.error();
  out.catalog = std::make_shared<const quota_catalog>(std::move(*catalog));
  auto mailer = make_mailer_options(cfg);
  if (!mailer)
    return mailer.error();
  out.mail = std::move(mailer->mail);
  out.url_prefix = cfg.get_string("system.url-prefix");
  if (out.url_prefix.empty())
    out.url_prefix = "http://" + cfg.get_string("web.bind");
  out.list_namespace = cfg.get_string("mail.list-namespace");
  auto limiter = make_rate_limiter_options(cfg);
  if (!limiter)
    return limiter.error();
  out.limiter = std::move(*limiter);
  out.rate_limit = cfg.get_int("digests.rate-limit");
  out.rate_limit_window = cfg.get_int("digests.rate-limit-window");
  out.replies = cfg.get_bool("mail.enable-replies");
  out.secret_key = cfg.get_string("system.secret-key");
  out.reply_hostname = cfg.get_string("mail.reply-hostname");
  if (out.reply_hostname.empty())
    out.reply_hostname = domain_of(out.mail.smtp.from);
  return out;
}

std::vector<std::string> digest_task_queues() {
  return {"digests.scheduling", "digests.delivery"};
}

cron_entry schedule_digests_entry(double every) {
  cron_entry e;
  e.name = "schedule-digests";
  e.task = std::string{schedule_digests_task};
  e.timing.every_ms = static_cast<int64_t>(every * 1000);
  e.queue = "digests.scheduling";
  e.expires = every;
  return e;
}

void register_digest_tasks(task_registry& reg,
                           std::shared_ptr<const digest_delivery_options> opts) {
  task_schema sched;
  sched.name = std::string{schedule_digests_task};
  sched.queue = opts->scheduling_queue;
  sched.var_kwargs = true;
  sched.max_retries = 0; // the next tick runs it again
  reg.add(sched, [opts](const task_context&) { return schedule(*opts); });

  task_schema del;
  del.name = std::string{deliver_digest_task};
  del.queue = opts->delivery_queue;
  del.params = {required("key", param_type::text),
                optional("schedule_timestamp", param_type::any, nullptr)};
  del.var_kwargs = true;
  // An SMTP server that is down: tried every 15 s for a day before the
  // task is dead-lettered; the records wait in the digest meanwhile.
  del.default_retry_delay = 15;
  del.max_retries = 5760;
  reg.add(del, [opts](const task_context& ctx) {
    return deliver(*opts, ctx.args.get("key").as_text());
  });
}

std::shared_ptr<alert_sink>
make_digest_alert_sink(std::shared_ptr<const digest_delivery_options> opts) {
  return std::make_shared<digest_alert_sink>(std::move(opts));
}

} // namespace vigil
