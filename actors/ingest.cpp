#include "actors/ingest.hpp"

#include <algorithm>
#include <cmath>
#include <map>

#include <caf/actor_clock.hpp>
#include <spdlog/spdlog.h>

#include "actors/backends/broker.hpp"
#include "actors/backends/event_store.hpp"
#include "actors/metrics.hpp"
#include "actors/backends/quota.hpp"
#include "actors/ingest_attachments.hpp"
#include "actors/ingest_tsdb.hpp"
#include "config/config.hpp"
#include "messages/clock.hpp"
#include "messages/errors.hpp"

namespace vigil {

// -- the actor -----------------------------------------------------------------

namespace {

using self_ptr = ingest_actor::stateful_pointer<ingest_state>;

void next_batch(self_ptr self);

/// The categories and scope of the quotas that rejected an item, for
/// X-Sentry-Rate-Limits.
rate_limit_entry rejection_entry(const ingest_job& job,
                                 const quota_decision& d) {
  rate_limit_entry e;
  e.retry_after = d.retry_after;
  e.reason_code = d.reason_code;
  for (auto& q : job.quotas) {
    if (q.reason_code != d.reason_code)
      continue;
    e.categories = q.categories;
    e.scope = to_string(q.scope);
    return e;
  }
  e.scope = "key";
  return e;
}

/// Logs a failure of the store or the broker, at most once a minute: a dead
/// one fails every batch.
void log_failure(self_ptr self, const std::string& text) {
  auto& st = self->state;
  auto now = self->clock().now();
  if (st.last_failure_log != caf::actor_clock::time_point{}
      && now - st.last_failure_log < std::chrono::minutes{1})
    return;
  st.last_failure_log = now;
  spdlog::error("ingest: {} (further failures are logged once a minute; "
                "the actor's status counts them)",
                text);
}

bool ensure_store(self_ptr self) {
  auto& st = self->state;
  if (st.store)
    return true;
  auto store = st.opts.open_store();
  if (!store) {
    auto text = error_text(store.error());
    log_failure(self, "event store unavailable: " + text);
    st.counters.fail("event store unavailable: " + text);
    return false;
  }
  st.store = std::move(*store);
  return true;
}

bool ensure_broker(self_ptr self) {
  auto& st = self->state;
  if (st.conn)
    return true;
  auto conn = st.opts.open_broker();
  if (!conn) {
    auto text = error_text(conn.error());
    log_failure(self, "task broker unavailable: " + text);
    st.counters.fail("task broker unavailable: " + text);
    return false;
  }
  st.conn = std::move(*conn);
  st.broker_durable = st.conn->durable();
  // memory://: the outbox keeps each task until a worker acknowledged it.
  // No wake-up per acknowledgement: a poll per settlement would cut the
  // batches short (a commit, and under db.sqlite-synchronous full an
  // fsync, each); the upkeep's timer drains them once a second when idle.
  st.outbox->watch(*st.conn, nullptr);
  return true;
}

/// Publishes the post_process tasks, reconnecting once on failure (a
/// broker that refused the batch itself, being full, is not reconnected).
caf::error publish_tasks(self_ptr self, const std::vector<outgoing_task>& tasks) {
  auto& st = self->state;
  caf::error err;
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (!ensure_broker(self))
      return caf::make_error(errc::connection_failed,
                             "task broker unavailable");
    err = st.conn->publish(tasks);
    if (!err)
      return {};
    log_failure(self, "publishing to " + st.conn->describe()
                        + " failed: " + error_text(err));
    if (err == errc::too_large)
      return err;
    st.conn.reset();
  }
  return err;
}

/// What the TSDB counts of an accepted event item, kept beside its
/// stored_event until the batch's store tells whether it was stored.
struct event_meta {
  size_t job = 0;
  std::string category;
  int64_t quantity = 1;
  std::string user_identity;
  std::string environment;
};

/// The answers of a batch, given once the buffer holds its group counts
/// (or at once when it has none).
struct batch_answers {
  std::vector<ingest_reply> replies;
  std::vector<ingest_result> results;

  void deliver() {
    for (size_t j = 0; j < replies.size(); ++j)
      replies[j](std::move(results[j]));
  }
};

/// A buffer that answered false or not in time: the events are stored and
/// the buffer actor holds their increments (retried), so the batch is
/// answered 200 anyway; a 503 would only make the SDKs retry events whose
/// retries count nothing.
void buffer_unconfirmed(self_ptr self, const std::string& why) {
  auto& st = self->state;
  ++st.buffer_unconfirmed;
  st.counters.fail("buffer: " + why);
  auto now = self->clock().now();
  if (st.last_buffer_log != caf::actor_clock::time_point{}
      && now - st.last_buffer_log < std::chrono::minutes{1})
    return;
  st.last_buffer_log = now;
  spdlog::warn("ingest: the write buffer did not confirm a batch's group "
               "counts ({}); answered anyway, the buffer holds and retries "
               "them (logged once a minute; the actor's status counts them)",
               why);
}

/// Sentry's Buffer.incr(Group, {times_seen: n}, {id}, {last_seen}), one
/// row per group of the batch, already summed: the batch says how many
/// events (increments) its rows add up, which the buffer's figures count.
buffer_batch group_incrs(const std::vector<group_count>& counts) {
  buffer_batch out;
  out.rows.reserve(counts.size());
  for (const auto& c : counts) {
    buffer_incr x;
    x.model = "sentry.group";
    x.columns.emplace("times_seen", c.times_seen);
    x.filters.emplace("id", buffer_value::of(c.group_id));
    // The apply keeps the greater of this and the row's (buffer_sql's
    // latest_columns), so last_seen never moves backwards.
    x.extra.emplace("last_seen", buffer_value::of_datetime(static_cast<int64_t>(
                                   std::llround(c.last_seen * 1e6))));
    out.rows.push_back(std::move(x));
    out.increments += static_cast<uint64_t>(std::max<int64_t>(0, c.times_seen));
  }
  return out;
}

/// The environment id of each stored event's meta (0 for none), created in
/// SQL when new. When that fails (logged) all are 0: the counts for all
/// environments stand.
std::vector<int64_t> environment_ids(self_ptr self,
                                     const std::vector<ingest_job>& jobs,
                                     const std::vector<event_meta>& metas) {
  std::vector<int64_t> out(metas.size(), 0);
  // Per organization, each name once: a batch has one or two.
  std::map<uint64_t, std::vector<std::string>> names;
  for (const auto& m : metas)
    if (!m.environment.empty()) {
      auto& xs = names[jobs[m.job].scoping.organization_id];
      if (std::find(xs.begin(), xs.end(), m.environment) == xs.end())
        xs.push_back(m.environment);
    }
  std::map<std::pair<uint64_t, std::string_view>, int64_t> ids;
  for (const auto& [org, xs] : names) {
    auto got = self->state.store->environment_ids(org, xs);
    if (!got) {
      self->state.counters.fail("environments: " + error_text(got.error()));
      log_failure(self, "reading the environments failed: "
                          + error_text(got.error()));
      return out;
    }
    for (size_t i = 0; i < xs.size(); ++i)
      ids[{org, xs[i]}] = (*got)[i];
  }
  for (size_t i = 0; i < metas.size(); ++i)
    if (!metas[i].environment.empty())
      out[i] = ids[{jobs[metas[i].job].scoping.organization_id,
                    metas[i].environment}];
  return out;
}

/// Stores the accepted events of a batch, queues their tasks and answers
/// every job: the second half of a batch, once its quota decisions are in.
void finish_batch(self_ptr self, std::vector<ingest_job>& jobs,
                  const std::vector<quota_decision>& decisions) {
  auto& st = self->state;
  auto answers = std::make_shared<batch_answers>();
  auto& results = answers->results;
  results.resize(jobs.size());
  std::vector<stored_event> events;
  std::vector<event_meta> metas;
  std::vector<bool> has_events(jobs.size(), false);
  std::vector<batch_attachment> attachments;
  bool tsdb_on = st.opts.tsdb.has_value();
  ingest_tsdb_batch counts{now_unix_us() / 1000000};
  size_t d = 0;
  for (size_t j = 0; j < jobs.size(); ++j) {
    auto& job = jobs[j];
    auto& res = results[j];
    res.event_id = job.event_id;
    size_t rejected = 0;
    for (auto& item : job.items) {
      // Unlimited items had no check: accepted.
      static const quota_decision unchecked;
      const auto& dec = item.limited ? decisions[d++] : unchecked;
      auto& by = st.by_category[item.category];
      auto quantity = static_cast<uint64_t>(std::max<int64_t>(0, item.quantity));
      if (!item.filtered.empty()) {
        // Dropped by an inbound filter before any quota, as Relay does.
        ++st.items_filtered;
        metrics::incr("events.dropped", 1, {{"reason", "filtered"}});
        if (tsdb_on)
          counts.item(job.scoping, item.category, item.quantity,
                      item_outcome::filtered);
        continue;
      }
      if (!dec.accepted) {
        ++rejected;
        ++st.items_rejected;
        metrics::incr("events.dropped", 1, {{"reason", "rate_limited"}});
        by.second += quantity;
        if (tsdb_on)
          counts.item(job.scoping, item.category, item.quantity,
                      item_outcome::rate_limited);
        res.retry_after = std::max(res.retry_after, dec.retry_after);
        auto entry = rejection_entry(job, dec);
        entry.categories = {item.category};
        res.limits.push_back(std::move(entry));
        continue;
      }
      by.first += quantity;
      if (item.attachment && st.opts.filestore) {
        batch_attachment a;
        a.job = j;
        a.project_id = job.scoping.project_id;
        a.event_id = job.event_id;
        a.index = 0;
        for (auto it = attachments.rbegin();
             it != attachments.rend() && it->job == j; ++it)
          ++a.index;
        a.item = std::move(*item.attachment);
        attachments.push_back(std::move(a));
      }
      if (!item.event) {
        // Items without a data category (client reports) have no outcome.
        if (tsdb_on && item.limited)
          counts.item(job.scoping, item.category, item.quantity,
                      item_outcome::accepted);
        continue;
      }
      auto& ev = *item.event;
      if (tsdb_on)
        metas.push_back({j, item.category, item.quantity,
                         std::move(ev.user_identity),
                         std::move(ev.environment)});
      // The item is not used again: move rather than copy, on the one
      // thread every event passes.
      stored_event se;
      se.event_id = std::move(ev.event_id);
      se.project_id = job.scoping.project_id;
      se.grouping_hash = std::move(ev.grouping_hash);
      se.title = std::move(ev.title);
      se.culprit = std::move(ev.culprit);
      se.timestamp = ev.timestamp;
      se.json = std::move(ev.json);
      se.encoded = std::move(item.encoded);
      se.transaction = ev.transaction;
      events.push_back(std::move(se));
      has_events[j] = true;
    }
    if (!job.items.empty() && rejected == job.items.size())
      res.status = ingest_result::outcome::rate_limited;
  }
  // One transaction for the batch's events, groups and outbox record,
  // then one publish.
  std::string failure;
  bool buffered = st.opts.buffer_group_counts && st.opts.buffer;
  std::vector<group_count> deferred;
  if (!events.empty()) {
    st.outbox->drain();
    auto w = st.outbox->prepare(events);
    if (!ensure_store(self)) {
      st.outbox->rolled_back(w);
      failure = "event store unavailable, retry later";
    } else if (auto err = st.outbox->bound_recovery(*st.store)) {
      // What a previous run left must be told apart from this batch's row.
      st.outbox->rolled_back(w);
      log_failure(self, "reading the task outbox failed: " + error_text(err));
      st.counters.fail("outbox: " + error_text(err));
      st.store.reset();
      failure = "event store unavailable, retry later";
    } else if (auto groups = st.store->store_batch(
                 events, &w, buffered ? &deferred : nullptr);
               !groups) {
      st.outbox->rolled_back(w);
      auto text = error_text(groups.error());
      log_failure(self, "storing " + std::to_string(events.size())
                          + " events failed: " + text);
      st.counters.fail("store: " + text);
      st.store.reset();
      failure = "event store unavailable, retry later";
    } else {
      // Stored: what the TSDB counts of them (a retry counted when it was
      // first stored).
      auto env_ids = tsdb_on ? environment_ids(self, jobs, metas)
                             : std::vector<int64_t>{};
      for (size_t i = 0; tsdb_on && i < metas.size(); ++i) {
        const auto& out = (*groups)[i];
        if (out.duplicate)
          continue;
        const auto& m = metas[i];
        counts.item(jobs[m.job].scoping, m.category, m.quantity,
                    item_outcome::accepted);
        counts.event(events[i].project_id, out.group_id, m.user_identity,
                     env_ids[i]);
      }
      auto tasks = st.outbox->committed(w);
      caf::error published;
      if (!tasks.empty())
        published = publish_tasks(self, tasks);
      // Failed: the tasks wait in the outbox, republished by the upkeep.
      st.outbox->published(w.written, std::move(tasks), published,
                           st.broker_durable);
      if (published) {
        st.counters.fail("publish: " + error_text(published));
        failure = published == errc::too_large
                    ? "the task queue is full (no worker keeps up), retry "
                      "later"
                    : "task broker unavailable, retry later";
      } else {
        st.events_stored += events.size();
        metrics::incr("events.processed", static_cast<double>(events.size()));
      }
    }
  }
  // The attachments of the jobs whose events are stored (or that have
  // none): a job whose events failed is retried whole.
  std::vector<bool> files_failed(jobs.size(), false);
  if (!attachments.empty()) {
    if (!failure.empty())
      std::erase_if(attachments, [&](const batch_attachment& a) {
        return has_events[a.job];
      });
    caf::error err;
    if (!attachments.empty() && !ensure_store(self))
      err = caf::make_error(errc::unavailable, "event store unavailable");
    else if (!attachments.empty())
      err = keep_attachments(*st.opts.filestore, *st.store, attachments,
                             static_cast<double>(now_unix_us()) / 1e6);
    if (err) {
      log_failure(self, "keeping " + std::to_string(attachments.size())
                          + " attachments failed: " + error_text(err));
      st.counters.fail("attachments: " + error_text(err));
      for (const auto& a : attachments)
        files_failed[a.job] = true;
    } else {
      st.attachments_stored += attachments.size();
    }
  }
  if (tsdb_on && !counts.empty()) {
    ++st.tsdb_batches;
    self->send(*st.opts.tsdb, record_atom_v, counts.incrs(),
               counts.take_records());
  }
  answers->replies.reserve(jobs.size());
  for (size_t j = 0; j < jobs.size(); ++j) {
    if (!failure.empty() && has_events[j]) {
      ++st.unavailable;
      metrics::incr("events.dropped", 1, {{"reason", "unavailable"}});
      results[j].status = ingest_result::outcome::unavailable;
      results[j].detail = failure;
    } else if (files_failed[j]) {
      ++st.unavailable;
      results[j].status = ingest_result::outcome::unavailable;
      results[j].detail = "the filestore or event store is unavailable "
                          "(attachments), retry later";
    } else {
      ++st.counters.processed;
    }
    answers->replies.push_back(std::move(jobs[j].done));
  }
  ++st.batches;
  metrics::distribution("ingest.batch_size", static_cast<double>(jobs.size()));
  if (deferred.empty()) {
    answers->deliver();
  } else {
    // Committed: the answers wait until the buffer holds the counts (in
    // Redis, for the redis store), without blocking this thread; the next
    // batch goes on meanwhile.
    st.buffer_incrs += deferred.size();
    self->request(*st.opts.buffer, st.opts.buffer_timeout, incr_atom_v,
                  group_incrs(deferred))
      .then(
        [self, answers](bool held) {
          if (!held)
            buffer_unconfirmed(self, "its store refused them");
          answers->deliver();
        },
        [self, answers](caf::error& err) {
          buffer_unconfirmed(self, error_text(err));
          answers->deliver();
        });
  }
  // Ask for the next batch through the mailbox, so that status requests
  // get their turn between batches.
  self->send(self, poll_atom_v);
}

/// The decisions for `n` checks whose quota check failed: the quota
/// actor's own rule (quotas.fail-open), log line and figures.
std::vector<quota_decision> quota_failure(self_ptr self,
                                          const std::string& why, size_t n) {
  auto& st = self->state;
  return quota_unavailable_decisions(st.opts.fail_open, n, why, st.outage,
                                     st.counters, self->clock().now());
}

/// Outbox upkeep, at most once a second (and at start): republishes what
/// failed to publish or a previous run left, and, when `idle`, deletes the
/// settled rows in a transaction of their own (under load the next batch's
/// transaction deletes them).
void outbox_upkeep(self_ptr self, bool idle) {
  auto& st = self->state;
  st.outbox->drain();
  if (!st.outbox->has_work())
    return;
  // The actor's clock (steady_clock; the test coordinator's in tests), on
  // which the delayed poll below fires too.
  auto now = self->clock().now();
  bool scheduled = st.upkeep_at != caf::actor_clock::time_point{};
  bool due = (scheduled && now >= st.upkeep_at) || !st.outbox->recovered();
  if (!due) {
    if (!scheduled) {
      st.upkeep_at = now + std::chrono::seconds{1};
      self->delayed_send(self, std::chrono::seconds{1}, poll_atom_v);
    }
    return;
  }
  st.upkeep_at = {};
  if (ensure_store(self) && ensure_broker(self)) {
    auto err = st.outbox->catch_up(
      *st.store,
      [self](const std::vector<outgoing_task>& tasks) {
        return publish_tasks(self, tasks);
      },
      st.broker_durable);
    if (err) {
      log_failure(self, "republishing the task outbox failed: "
                          + error_text(err));
      st.counters.fail("outbox: " + error_text(err));
    }
    if (idle && st.store) {
      if (auto err = st.outbox->flush(*st.store)) {
        log_failure(self, "deleting settled outbox rows failed: "
                            + error_text(err));
        st.store.reset();
      }
    }
  }
  if (st.outbox->has_work()) {
    st.upkeep_at = now + std::chrono::seconds{1};
    self->delayed_send(self, std::chrono::seconds{1}, poll_atom_v);
  }
}

void next_batch(self_ptr self) {
  auto& st = self->state;
  if (st.busy)
    return;
  auto jobs = st.opts.queue->take(st.opts.batch_size);
  outbox_upkeep(self, jobs.empty());
  if (jobs.empty())
    return;
  std::vector<quota_check> checks;
  for (auto& job : jobs)
    for (auto& item : job.items) {
      if (!item.limited)
        continue;
      quota_check c;
      c.scoping = job.scoping;
      c.scoping.category = item.category;
      c.quotas = job.quotas;
      c.quantity = item.quantity;
      checks.push_back(std::move(c));
    }
  auto n = checks.size();
  if (st.local_quotas) {
    // Decided here; finish_batch asks for the next batch when done.
    auto decisions = st.local_quotas->check_batch(checks);
    if (decisions && decisions->size() == n)
      finish_batch(self, jobs, *decisions);
    else
      finish_batch(self, jobs,
                   quota_failure(self,
                                 decisions
                                   ? "quota store: one decision per check "
                                     "expected"
                                   : "quota store: "
                                       + error_text(decisions.error()),
                                 n));
    return;
  }
  // `busy` means a quota request is out. Its batch lives in the handlers
  // below, so that the next batch's quota round trip can run while this
  // one is being stored (see finish_batch's callers).
  st.busy = true;
  auto batch = std::make_shared<std::vector<ingest_job>>(std::move(jobs));
  self->request(st.opts.quotas, st.opts.quota_timeout, std::move(checks))
    .then(
      [=](std::vector<quota_decision>& decisions) {
        if (decisions.size() != n) {
          spdlog::error("ingest: quota actor answered {} decisions for {} "
                        "checks",
                        decisions.size(), n);
          decisions.resize(n);
        }
        // Send the next batch's quota request before storing this one:
        // the quota actor decides it meanwhile, on its own thread. Batches
        // stay as large as before (what arrived during one store).
        self->state.busy = false;
        next_batch(self);
        finish_batch(self, *batch, decisions);
      },
      [=](caf::error& err) {
        // The quota actor applies quotas.fail-open to store errors itself;
        // this is for the actor being gone or too slow.
        auto decisions
          = quota_failure(self, "quota actor: " + error_text(err), n);
        self->state.busy = false;
        next_batch(self);
        finish_batch(self, *batch, decisions);
      });
}

} // namespace

bool ingest_counts_through_buffer(const config& cfg) {
  auto mode = cfg.get_string("buffer.ingest-counters");
  if (mode == "buffer")
    return true;
  if (mode == "transaction")
    return false;
  return cfg.get_string("buffer.backend") == "redis";
}

ingest_actor::behavior_type ingest_service(self_ptr self,
                                           ingest_options opts) {
  self->state.opts = std::move(opts);
  self->state.outbox
    = std::make_unique<task_outbox>(self->state.opts.task_queue);
  if (self->state.opts.open_local_quotas)
    self->state.local_quotas = self->state.opts.open_local_quotas();
  self->state.opts.queue->attach(self->address());
  // Work may have arrived before the queue knew whom to wake.
  self->send(self, poll_atom_v);
  return {
    [=](poll_atom) { next_batch(self); },
    [=](status_atom) {
      auto& st = self->state;
      auto out = make_status(self, st.counters);
      out.extra["queued"] = std::to_string(st.opts.queue->size());
      out.extra["queue_capacity"] = std::to_string(st.opts.queue->capacity());
      out.extra["queued_bytes"] = std::to_string(st.opts.queue->bytes());
      out.extra["queue_byte_capacity"]
        = std::to_string(st.opts.queue->byte_capacity());
      out.extra["batches"] = std::to_string(st.batches);
      out.extra["events_stored"] = std::to_string(st.events_stored);
      out.extra["items_rejected"] = std::to_string(st.items_rejected);
      out.extra["items_filtered"] = std::to_string(st.items_filtered);
      out.extra["attachments_stored"]
        = std::to_string(st.attachments_stored);
      out.extra["unavailable"] = std::to_string(st.unavailable);
      out.extra["failed_open"] = std::to_string(st.outage.failed_open);
      out.extra["group_counts"] = st.opts.buffer_group_counts && st.opts.buffer
                                    ? "buffer"
                                    : "transaction";
      out.extra["buffer_incrs"] = std::to_string(st.buffer_incrs);
      out.extra["buffer_unconfirmed"]
        = std::to_string(st.buffer_unconfirmed);
      out.extra["tsdb_batches"] = std::to_string(st.tsdb_batches);
      out.extra["outbox_unpublished"]
        = std::to_string(st.outbox->unpublished());
      out.extra["outbox_tracked"] = std::to_string(st.outbox->tracked_rows());
      out.extra["outbox_recovered_tasks"]
        = std::to_string(st.outbox->recovered_tasks());
      out.extra["outbox_deleted"] = std::to_string(st.outbox->deleted_rows());
      for (auto& [category, counts] : st.by_category) {
        out.extra["accepted." + category] = std::to_string(counts.first);
        out.extra["rejected." + category] = std::to_string(counts.second);
      }
      return out;
    },
  };
}

} // namespace vigil
