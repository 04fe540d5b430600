#include "actors/task_consumer.hpp"

#include <algorithm>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "messages/clock.hpp"
#include "messages/errors.hpp"
#include "messages/kombu_envelope.hpp"
#include "tasks/task_runner.hpp"

namespace vigil {

namespace {

using self_ptr = task_consumer_actor::stateful_pointer<task_consumer_state>;
using std::chrono::milliseconds;

void schedule_poll(self_ptr self, milliseconds delay) {
  auto& st = self->state;
  if (st.poll_scheduled || st.draining)
    return;
  st.poll_scheduled = true;
  if (delay.count() == 0)
    self->send(self, poll_atom_v);
  else
    self->delayed_send(self, delay, poll_atom_v);
}

void on_broker_error(self_ptr self, const caf::error& err) {
  auto& st = self->state;
  auto text = error_text(err);
  st.counters.fail(text);
  if (st.conn) {
    spdlog::warn("broker {} failed: {}; reconnecting",
                 st.conn->describe(), text);
    st.conn.reset();
  }
}

// Connects if needed; false means "not now" (a poll is scheduled to retry).
bool ensure_connected(self_ptr self) {
  auto& st = self->state;
  if (st.conn)
    return true;
  auto now = std::chrono::steady_clock::now();
  if (now < st.next_connect) {
    schedule_poll(self, std::chrono::duration_cast<milliseconds>(
                          st.next_connect - now)
                          + milliseconds{1});
    return false;
  }
  auto conn = connect_broker(st.opts.broker_url, st.opts.io_timeout);
  if (!conn) {
    st.connect_backoff = std::clamp(st.connect_backoff * 2, milliseconds{100},
                                    milliseconds{5000});
    st.next_connect = now + st.connect_backoff;
    auto text = error_text(conn.error());
    if (st.counters.last_error != text)
      spdlog::warn("broker unavailable: {}; retrying every {} ms at most",
                   text, st.connect_backoff.count());
    st.counters.fail(std::move(text));
    schedule_poll(self, st.connect_backoff);
    return false;
  }
  if (st.connect_backoff.count() > 0) {
    ++st.reconnects;
    spdlog::info("broker {} reachable again", (*conn)->describe());
  }
  st.connect_backoff = milliseconds{0};
  st.conn = std::move(*conn);
  return true;
}

// Stores pending results; a failing result backend never holds up acks.
void store_results(self_ptr self) {
  auto& st = self->state;
  if (st.to_store.empty() || st.opts.result_backend_url.empty())
    return;
  if (!st.results) {
    auto rb = connect_result_backend(st.opts.result_backend_url,
                                     std::chrono::seconds{st.opts.result_expires},
                                     st.opts.io_timeout);
    if (!rb) {
      st.counters.fail(error_text(rb.error()));
      return;
    }
    st.results = std::move(*rb);
  }
  if (auto err = st.results->store(st.to_store)) {
    st.counters.fail(error_text(err));
    spdlog::warn("result backend failed: {}", error_text(err));
    st.results.reset();
    // Keep a bounded backlog for the next attempt.
    if (st.to_store.size() > 100000)
      st.to_store.erase(st.to_store.begin(),
                        st.to_store.begin()
                          + static_cast<ptrdiff_t>(st.to_store.size() - 100000));
    return;
  }
  st.to_store.clear();
}

// Writes back everything pending. Retries are published before their
// originals are acknowledged, and dead letters stored before theirs: a
// crash in between repeats work, it never loses it.
bool flush_pending(self_ptr self) {
  auto& st = self->state;
  if (st.to_publish.empty() && st.to_bury.empty() && st.bury_tags.empty()
      && st.to_ack.empty() && st.to_requeue.empty() && st.to_store.empty())
    return true;
  if (!ensure_connected(self))
    return false;
  if (!st.to_publish.empty()) {
    if (auto err = st.conn->publish(st.to_publish)) {
      on_broker_error(self, err);
      return false;
    }
    st.to_publish.clear();
  }
  store_results(self);
  if (!st.to_bury.empty() || !st.bury_tags.empty()) {
    if (auto err = st.conn->dead_letter_batch(st.to_bury, st.bury_tags)) {
      on_broker_error(self, err);
      return false;
    }
    st.to_bury.clear();
    st.bury_tags.clear();
  }
  if (!st.to_ack.empty()) {
    if (auto err = st.conn->ack(st.to_ack)) {
      on_broker_error(self, err);
      return false;
    }
    st.to_ack.clear();
  }
  if (!st.to_requeue.empty()) {
    if (auto err = st.conn->requeue(st.to_requeue)) {
      on_broker_error(self, err);
      return false;
    }
    st.to_requeue.clear();
  }
  return true;
}

void answer_drain(self_ptr self, bool complete) {
  for (auto& rp : self->state.drained)
    rp.deliver(complete);
  self->state.drained.clear();
}

void finish_drain_if_done(self_ptr self) {
  auto& st = self->state;
  if (!st.draining || st.held > 0 || st.drained.empty())
    return;
  if (!flush_pending(self))
    return;
  spdlog::info("consumer drained: nothing held");
  answer_drain(self, true);
}

// Tasks running (or queued) at a worker.
size_t load_of(const std::deque<std::vector<std::string>>& batches) {
  size_t n = 0;
  for (auto& b : batches)
    n += b.size();
  return n;
}

size_t running_count(const task_consumer_state& st) {
  size_t n = 0;
  for (auto& w : st.worker_batches)
    n += load_of(w);
  return n;
}

// Splits ready deliveries over the workers, least loaded first.
void dispatch(self_ptr self, std::vector<delivery>& ready) {
  auto& st = self->state;
  if (ready.empty())
    return;
  auto n = st.workers.size();
  auto chunk = std::max<size_t>(1, (ready.size() + n - 1) / n);
  size_t pos = 0;
  while (pos < ready.size()) {
    size_t w = 0;
    size_t best = SIZE_MAX;
    for (size_t i = 0; i < n; ++i)
      if (auto load = load_of(st.worker_batches[i]); load < best) {
        best = load;
        w = i;
      }
    auto end = std::min(ready.size(), pos + chunk);
    std::vector<delivery> batch;
    std::vector<std::string> tags;
    batch.reserve(end - pos);
    tags.reserve(end - pos);
    for (; pos < end; ++pos) {
      tags.push_back(ready[pos].tag);
      batch.push_back(std::move(ready[pos]));
    }
    st.worker_batches[w].push_back(std::move(tags));
    self->send(st.workers[w], run_atom_v, std::move(batch));
  }
  ready.clear();
}

void schedule_eta(self_ptr self) {
  auto& st = self->state;
  if (st.eta_held.empty())
    return;
  auto first = st.eta_held.begin()->first;
  if (st.eta_timer_at != 0 && st.eta_timer_at <= first)
    return;
  st.eta_timer_at = first;
  auto delay = std::max<int64_t>(0, first - now_unix_us());
  self->delayed_send(self, std::chrono::microseconds{delay} + milliseconds{1},
                     eta_atom_v);
}

void bury_undecodable(self_ptr self, raw_delivery& raw, std::string reason) {
  auto& st = self->state;
  spdlog::warn("dead-lettering a message from queue '{}': {}", raw.queue,
               reason);
  ++st.dead_lettered;
  st.to_bury.push_back(dead_letter{new_uuid4(), "", "", raw.queue,
                                   std::move(reason), now_unix_us(),
                                   std::move(raw.envelope), {}});
  st.bury_tags.push_back(std::move(raw.tag));
  --st.held;
}

void poll(self_ptr self) {
  auto& st = self->state;
  st.poll_scheduled = false;
  if (st.draining || !ensure_connected(self))
    return;
  if (!flush_pending(self)) {
    schedule_poll(self, milliseconds{100});
    return;
  }
  if (st.held >= st.opts.prefetch)
    return; // outcomes free room and poll again
  std::vector<raw_delivery> raws;
  auto room = std::min(st.opts.prefetch - st.held, st.opts.fetch_batch);
  if (auto err = st.conn->fetch(st.opts.queues, room, raws)) {
    on_broker_error(self, err);
    schedule_poll(self, milliseconds{100});
    return;
  }
  if (raws.empty()) {
    auto max_idle = milliseconds{
      std::max<int64_t>(1, static_cast<int64_t>(st.opts.poll_interval * 1000))};
    st.idle_backoff = std::clamp(st.idle_backoff * 2, milliseconds{1}, max_idle);
    schedule_poll(self, st.idle_backoff);
    return;
  }
  st.idle_backoff = milliseconds{0};
  st.held += raws.size();
  st.fetched += raws.size();
  auto now = now_unix_us();
  std::vector<delivery> ready;
  ready.reserve(raws.size());
  for (auto& raw : raws) {
    auto d = st.conn->decode(raw);
    if (!d) {
      bury_undecodable(self, raw, error_text(d.error()));
      continue;
    }
    d->received_us = now;
    if (d->msg.eta_us > now)
      st.eta_held.emplace(d->msg.eta_us, std::move(*d));
    else
      ready.push_back(std::move(*d));
  }
  dispatch(self, ready);
  schedule_eta(self);
  if (!flush_pending(self)) {
    schedule_poll(self, milliseconds{100});
    return;
  }
  if (st.held < st.opts.prefetch)
    schedule_poll(self, milliseconds{0});
}

void on_outcomes(self_ptr self, std::vector<task_outcome>& outcomes) {
  auto& st = self->state;
  auto sender = self->current_sender();
  for (size_t i = 0; i < st.workers.size(); ++i)
    if (st.workers[i].address() == sender) {
      if (!st.worker_batches[i].empty())
        st.worker_batches[i].pop_front();
      break;
    }
  auto now = now_unix_us();
  for (auto& out : outcomes) {
    auto& d = out.d;
    if (!out.result_doc.empty())
      st.to_store.push_back(stored_result{d.msg.id, std::move(out.result_doc)});
    switch (out.what()) {
      case outcome_kind::success:
        ++st.succeeded;
        st.to_ack.push_back(std::move(d.tag));
        break;
      case outcome_kind::expired:
        ++st.expired;
        st.to_ack.push_back(std::move(d.tag));
        break;
      case outcome_kind::retry:
        ++st.retried;
        st.to_publish.push_back(
          outgoing_task{d.queue, make_retry_message(d.msg, out.retry_delay)});
        st.to_ack.push_back(std::move(d.tag));
        break;
      case outcome_kind::dead_letter: {
        ++st.dead_lettered;
        spdlog::warn("dead-lettering task {} [{}]: {}", d.msg.task, d.msg.id,
                     out.reason);
        auto env = encode_kombu_envelope(d.msg, d.queue, d.tag);
        st.to_bury.push_back(dead_letter{new_uuid4(), d.msg.task, d.msg.id,
                                         d.queue, std::move(out.reason), now,
                                         std::move(env), {}});
        st.bury_tags.push_back(std::move(d.tag));
        break;
      }
    }
  }
  st.counters.processed += outcomes.size();
  st.held -= std::min(st.held, outcomes.size());
  if (!flush_pending(self))
    schedule_poll(self, milliseconds{100});
  finish_drain_if_done(self);
  if (!st.draining && st.held < st.opts.prefetch)
    schedule_poll(self, milliseconds{0});
}

void on_eta(self_ptr self) {
  auto& st = self->state;
  st.eta_timer_at = 0;
  auto now = now_unix_us();
  std::vector<delivery> ready;
  while (!st.eta_held.empty() && st.eta_held.begin()->first <= now) {
    ready.push_back(std::move(st.eta_held.begin()->second));
    st.eta_held.erase(st.eta_held.begin());
  }
  if (!st.draining)
    dispatch(self, ready);
  schedule_eta(self);
}

void give_back(self_ptr self, std::vector<std::string> tags) {
  auto& st = self->state;
  st.held -= std::min(st.held, tags.size());
  for (auto& tag : tags)
    st.to_requeue.push_back(std::move(tag));
}

} // namespace

task_consumer_actor::behavior_type
task_consumer(task_consumer_actor::stateful_pointer<task_consumer_state> self,
              consumer_options opts, std::vector<task_worker_actor> workers) {
  auto& st = self->state;
  st.opts = std::move(opts);
  st.workers = std::move(workers);
  st.worker_batches.resize(st.workers.size());
  if (st.opts.queues.empty())
    st.opts.queues.emplace_back("celery");
  schedule_poll(self, milliseconds{0});
  auto sweep_every = std::chrono::duration_cast<milliseconds>(
    std::chrono::duration<double>(st.opts.restore_interval));
  // Sweep at start, like kombu: a crashed predecessor's messages come back.
  self->send(self, sweep_atom_v);
  return {
    [=](poll_atom) { poll(self); },
    [=](eta_atom) { on_eta(self); },
    [=](sweep_atom) {
      auto& st = self->state;
      if (st.draining)
        return;
      if (ensure_connected(self)) {
        auto n = st.conn->restore_expired(
          std::chrono::duration<double>(st.opts.visibility_timeout));
        if (!n) {
          on_broker_error(self, n.error());
        } else if (*n > 0) {
          st.restored += *n;
          spdlog::info("restored {} message(s) unacknowledged for more than "
                       "{} s", *n, st.opts.visibility_timeout);
          schedule_poll(self, milliseconds{0});
        }
      }
      self->delayed_send(self, sweep_every, sweep_atom_v);
    },
    [=](std::vector<task_outcome>& outcomes) { on_outcomes(self, outcomes); },
    [=](drain_atom) {
      auto& st = self->state;
      auto rp = self->make_response_promise<bool>();
      st.drained.push_back(rp);
      if (!st.draining) {
        st.draining = true;
        spdlog::info("draining: {} task(s) running, {} held for their ETA",
                     running_count(st), st.eta_held.size());
        std::vector<std::string> tags;
        for (auto& [eta, d] : st.eta_held)
          tags.push_back(d.tag);
        st.eta_held.clear();
        give_back(self, std::move(tags));
        auto grace = std::chrono::duration_cast<milliseconds>(
          std::chrono::duration<double>(st.opts.shutdown_timeout));
        self->delayed_send(self, grace, deadline_atom_v);
      }
      finish_drain_if_done(self);
      return rp;
    },
    [=](deadline_atom) {
      auto& st = self->state;
      if (st.drained.empty())
        return;
      spdlog::warn("shutdown timeout: giving back {} running task(s)",
                   running_count(st));
      std::vector<std::string> tags;
      for (auto& batches : st.worker_batches) {
        for (auto& batch : batches)
          for (auto& tag : batch)
            tags.push_back(std::move(tag));
        batches.clear();
      }
      give_back(self, std::move(tags));
      st.held = 0;
      if (!flush_pending(self))
        spdlog::warn("could not give back held messages: the broker is "
                     "unreachable; they return after the visibility timeout");
      answer_drain(self, false);
    },
    [=](status_atom) {
      auto& st = self->state;
      auto status = make_status(self, st.counters);
      auto& x = status.extra;
      x["broker"] = st.conn ? st.conn->describe() : "(disconnected)";
      x["held"] = std::to_string(st.held);
      x["eta_held"] = std::to_string(st.eta_held.size());
      x["fetched"] = std::to_string(st.fetched);
      x["succeeded"] = std::to_string(st.succeeded);
      x["retried"] = std::to_string(st.retried);
      x["dead_lettered"] = std::to_string(st.dead_lettered);
      x["expired"] = std::to_string(st.expired);
      x["restored"] = std::to_string(st.restored);
      x["reconnects"] = std::to_string(st.reconnects);
      return status;
    },
  };
}

} // namespace vigil
