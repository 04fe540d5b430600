#include "actors/task_consumer.hpp"
#include "actors/task_consumer_steps.hpp"

#include <algorithm>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "messages/clock.hpp"
#include "messages/errors.hpp"
#include "messages/kombu_envelope.hpp"
#include "messages/result_doc.hpp"
#include "messages/task_body.hpp"
#include "tasks/task_runner.hpp"

namespace vigil {

namespace {

using std::chrono::milliseconds;
using namespace consumer_steps;

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

// Writes back everything pending. Retries are published before their
// originals are acknowledged, and dead letters stored before theirs: a
// crash in between repeats work, it never loses it.
bool flush_pending(self_ptr self) {
  auto& st = self->state;
  if (st.to_publish.empty() && st.to_bury.empty() && st.bury_tags.empty()
      && st.to_ack.empty() && st.to_requeue.empty() && st.to_store.empty()
      && st.to_restore.empty() && st.to_chord.empty())
    return true;
  if (!ensure_connected(self))
    return false;
  if (!return_chord_parts(self))
    return false;
  if (!set_chord_sizes(self))
    return false;
  if (!st.to_publish.empty()) {
    if (auto err = st.conn->publish(st.to_publish)) {
      on_broker_error(self, err);
      return false;
    }
    st.to_publish.clear();
  }
  if (!st.chords_done.empty() && st.results) {
    if (auto err = st.results->forget_chords(st.chords_done))
      spdlog::warn("could not delete finished chord keys: {}",
                   error_text(err));
    st.chords_done.clear();
  }
  store_results(self);
  if (!st.to_bury.empty() || !st.bury_tags.empty()) {
    if (auto err = st.conn->dead_letter_batch(st.to_bury, st.bury_tags)) {
      on_broker_error(self, err);
      return false;
    }
    st.ledger->remove(st.bury_tags);
    st.to_bury.clear();
    st.bury_tags.clear();
  }
  if (!st.to_ack.empty()) {
    if (auto err = st.conn->ack(st.to_ack)) {
      on_broker_error(self, err);
      return false;
    }
    st.ledger->remove(st.to_ack);
    st.to_ack.clear();
  }
  if (!st.to_requeue.empty()) {
    if (auto err = st.conn->requeue(st.to_requeue)) {
      on_broker_error(self, err);
      return false;
    }
    st.ledger->remove(st.to_requeue);
    st.to_requeue.clear();
  }
  if (!st.to_restore.empty()) {
    auto n = st.conn->restore_unacked(st.to_restore);
    if (!n) {
      on_broker_error(self, n.error());
      return false;
    }
    st.given_back += *n;
    st.ledger->remove(st.to_restore);
    st.to_restore.clear();
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
  for (auto& w : st.workers)
    n += load_of(w.batches);
  return n;
}

size_t live_workers(const task_consumer_state& st) {
  size_t n = 0;
  for (auto& w : st.workers)
    if (w.handle)
      ++n;
  return n;
}

// What `inspect reserved/scheduled` shows of this consumer, put into the
// node's held_tasks. Of the batch a worker is on, the deliveries after the
// one it runs are reserved (all of it while it runs none: not started yet,
// or just answered).
void put_snapshot(self_ptr self) {
  auto& st = self->state;
  if (!st.opts.running)
    return;
  held_snapshot snap;
  auto running = st.opts.running->ids();
  for (auto& w : st.workers)
    for (size_t b = 0; b < w.infos.size(); ++b) {
      auto& infos = w.infos[b];
      size_t from = 0;
      if (b == 0)
        for (size_t i = 0; i < infos.size(); ++i)
          if (running.count(infos[i].id) > 0)
            from = i + 1;
      snap.reserved.insert(snap.reserved.end(),
                           infos.begin() + static_cast<ptrdiff_t>(from),
                           infos.end());
    }
  for (auto& d : st.ready)
    snap.reserved.push_back(task_info_of(d));
  for (auto& d : st.suspects)
    snap.reserved.push_back(task_info_of(d));
  for (auto& [eta, d] : st.eta_held) {
    snap.scheduled.push_back(task_info_of(d));
    snap.scheduled.back().eta_us = eta;
  }
  st.opts.running->held.put(self->id(), std::move(snap));
}

// Hands suspects to idle workers, one each, counting each as a failed
// delivery first: should it take the whole process down, nothing would be
// left to count it. Stops at the first broker error (retried on the next
// poll).
void dispatch_suspects(self_ptr self) {
  auto& st = self->state;
  while (!st.suspects.empty()) {
    auto idle = std::find_if(st.workers.begin(), st.workers.end(),
                             [](auto& w) {
                               return w.handle && w.batches.empty();
                             });
    if (idle == st.workers.end() || !ensure_connected(self))
      return;
    auto& d = st.suspects.front();
    auto count = st.conn->count_delivery(d.tag);
    if (!count) {
      on_broker_error(self, count.error());
      schedule_poll(self, milliseconds{100});
      return;
    }
    spdlog::info("running task {} [{}] alone (earlier deliveries whose "
                 "worker died: {})", d.msg.task, d.msg.id, *count - 1);
    ++st.suspects_run;
    idle->suspect = true;
    idle->batches.push_back({d.tag});
    if (st.opts.running)
      idle->infos.push_back({task_info_of(d)});
    std::vector<delivery> batch;
    batch.push_back(std::move(d));
    st.suspects.pop_front();
    self->send(idle->handle, run_atom_v, std::move(batch));
  }
}

// Runs suspects alone, then splits the ready deliveries over the live
// workers, least loaded first. While suspects wait, the least loaded
// worker gets no new batch, so that it comes free for the next one.
void dispatch(self_ptr self) {
  auto& st = self->state;
  dispatch_suspects(self);
  if (st.ready.empty())
    return;
  std::vector<size_t> targets;
  for (size_t i = 0; i < st.workers.size(); ++i)
    if (st.workers[i].handle && !st.workers[i].suspect)
      targets.push_back(i);
  auto load = [&](size_t i) { return load_of(st.workers[i].batches); };
  if (!st.suspects.empty() && !targets.empty())
    targets.erase(std::min_element(targets.begin(), targets.end(),
                                   [&](size_t a, size_t b) {
                                     return load(a) < load(b);
                                   }));
  if (targets.empty())
    return; // a worker coming free (or a new one) dispatches them
  auto& ready = st.ready;
  auto chunk = std::max<size_t>(1, (ready.size() + targets.size() - 1)
                                     / targets.size());
  size_t pos = 0;
  while (pos < ready.size()) {
    auto w = *std::min_element(targets.begin(), targets.end(),
                               [&](size_t a, size_t b) {
                                 return load(a) < load(b);
                               });
    auto end = std::min(ready.size(), pos + chunk);
    std::vector<delivery> batch;
    std::vector<std::string> tags;
    batch.reserve(end - pos);
    tags.reserve(end - pos);
    std::vector<task_info> infos;
    if (st.opts.running)
      infos.reserve(end - pos);
    for (; pos < end; ++pos) {
      tags.push_back(ready[pos].tag);
      if (st.opts.running)
        infos.push_back(task_info_of(ready[pos]));
      batch.push_back(std::move(ready[pos]));
    }
    st.workers[w].batches.push_back(std::move(tags));
    if (st.opts.running)
      st.workers[w].infos.push_back(std::move(infos));
    self->send(st.workers[w].handle, run_atom_v, std::move(batch));
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

// A message whose worker died at each of its last max_deliveries
// deliveries: run again, it would most likely kill the next one too.
void bury_poisoned(self_ptr self, raw_delivery& raw) {
  auto& st = self->state;
  auto reason = "delivered " + std::to_string(raw.failed_deliveries)
                + " times, its worker died each time";
  std::string task;
  std::string id;
  if (auto d = st.conn->decode(raw)) {
    task = d->msg.task;
    id = d->msg.id;
    if (st.opts.events && st.opts.events->enabled())
      st.opts.events->push(task_rejected_event(d->msg, false));
  }
  spdlog::error("dead-lettering task {} [{}] from queue '{}': {} "
                "(tasks.max-deliveries {})", task, id, raw.queue, reason,
                st.opts.max_deliveries);
  ++st.dead_lettered;
  ++st.poisoned;
  st.to_bury.push_back(dead_letter{new_uuid4(), std::move(task),
                                   std::move(id), raw.queue,
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
  dispatch(self); // suspects left waiting by a broker error
  if (st.held >= st.opts.prefetch)
    return; // outcomes free room and poll again
  if (live_workers(st) == 0)
    return; // a new worker polls again; meanwhile others may take the work
  if (st.opts.consumed && st.opts.consumed->version() != st.queues_version) {
    st.queues_version = st.opts.consumed->version();
    st.opts.queues = st.opts.consumed->list();
  }
  if (st.opts.queues.empty()) { // every queue cancelled: wait for one
    std::vector<raw_delivery> none; // a subscribing broker (AMQP) unsubscribes
    if (auto err = st.conn->fetch(st.opts.queues, 0, none))
      on_broker_error(self, err);
    schedule_poll(self, milliseconds{std::max<int64_t>(
                          1, static_cast<int64_t>(st.opts.poll_interval * 1000))});
    return;
  }
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
  {
    std::vector<std::string> tags;
    tags.reserve(raws.size());
    for (auto& raw : raws)
      tags.push_back(raw.tag);
    st.ledger->add(tags);
  }
  auto now = now_unix_us();
  for (auto& raw : raws) {
    if (st.opts.max_deliveries > 0
        && raw.failed_deliveries >= st.opts.max_deliveries) {
      bury_poisoned(self, raw);
      continue;
    }
    auto d = st.conn->decode(raw);
    if (!d) {
      bury_undecodable(self, raw, error_text(d.error()));
      continue;
    }
    d->received_us = now;
    if (st.opts.events && st.opts.events->enabled())
      st.opts.events->push(task_received_event(d->msg));
    bool suspect = raw.failed_deliveries > 0;
    if (d->msg.eta_us > now
        && !(st.opts.revoked && st.opts.revoked->contains(d->msg.id))) {
      if (suspect)
        st.eta_suspects.insert(d->tag);
      st.eta_held.emplace(d->msg.eta_us, std::move(*d));
    } else {
      make_due(st, std::move(*d), suspect);
    }
  }
  dispatch(self);
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
  for (auto& w : st.workers)
    if (w.handle && w.handle.address() == sender) {
      if (!w.batches.empty())
        w.batches.pop_front();
      if (!w.infos.empty())
        w.infos.pop_front();
      w.suspect = false; // a suspect runs alone: this was its batch
      break;
    }
  auto now = now_unix_us();
  for (auto& out : outcomes) {
    auto& d = out.d;
    if (!out.result_doc.empty())
      st.to_store.push_back(stored_result{d.msg.id, std::move(out.result_doc)});
    for (auto& r : out.canvas.extra_results)
      st.to_store.push_back(stored_result{r.task_id, std::move(r.doc)});
    for (auto& m : out.canvas.follow_ups) {
      if (m.queue.empty())
        m.queue = st.opts.default_queue;
      ++st.canvas_sent;
      st.to_publish.push_back(std::move(m));
    }
    if (!out.canvas.chord.group_id.empty())
      st.to_chord.push_back(std::move(out.canvas.chord));
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
  if (!st.draining)
    dispatch(self);
  if (!st.draining && st.held < st.opts.prefetch)
    schedule_poll(self, milliseconds{0});
}

void on_eta(self_ptr self) {
  auto& st = self->state;
  st.eta_timer_at = 0;
  auto now = now_unix_us();
  if (st.draining)
    return; // the drain gave the ETA-held deliveries back
  while (!st.eta_held.empty() && st.eta_held.begin()->first <= now) {
    auto& d = st.eta_held.begin()->second;
    auto suspect = st.eta_suspects.erase(d.tag) > 0;
    make_due(st, std::move(d), suspect);
    st.eta_held.erase(st.eta_held.begin());
  }
  dispatch(self);
  schedule_eta(self);
}

void give_back(self_ptr self, std::vector<std::string> tags) {
  auto& st = self->state;
  st.held -= std::min(st.held, tags.size());
  for (auto& tag : tags)
    st.to_requeue.push_back(std::move(tag));
}

// Worker slot `i` lost its worker: what it held goes back to the broker at
// once, counted as a failed delivery unless the worker was shut down.
void lose_worker(self_ptr self, size_t i, const caf::error& reason) {
  auto& st = self->state;
  auto& slot = st.workers[i];
  std::vector<std::string> tags;
  for (auto& batch : slot.batches)
    for (auto& tag : batch)
      tags.push_back(std::move(tag));
  slot.batches.clear();
  slot.infos.clear();
  slot.suspect = false;
  slot.handle = task_worker_actor{};
  bool crashed = reason && reason != caf::exit_reason::user_shutdown;
  if (crashed)
    ++st.worker_deaths;
  if (tags.empty())
    return;
  if (crashed) {
    spdlog::warn("a worker died ({}) running {} task(s): giving them back",
                 caf::to_string(reason), tags.size());
    st.held -= std::min(st.held, tags.size());
    st.to_restore.insert(st.to_restore.end(), tags.begin(), tags.end());
  } else {
    give_back(self, std::move(tags));
  }
  if (!flush_pending(self))
    schedule_poll(self, milliseconds{100});
  finish_drain_if_done(self);
}

} // namespace

task_consumer_actor::behavior_type
task_consumer(task_consumer_actor::stateful_pointer<task_consumer_state> self,
              consumer_options opts, std::vector<task_worker_actor> workers,
              std::shared_ptr<held_deliveries> held) {
  auto& st = self->state;
  st.opts = std::move(opts);
  for (auto& w : workers) {
    if (w)
      self->monitor(w);
    st.workers.push_back({std::move(w), {}, false, {}});
  }
  st.ledger = held ? std::move(held) : std::make_shared<held_deliveries>();
  // Whatever the ledger holds now, a predecessor held when it died: give
  // it back before taking anything (the first poll flushes it).
  st.to_restore = st.ledger->snapshot();
  if (!st.to_restore.empty())
    spdlog::warn("giving back {} message(s) held by a task consumer that "
                 "died", st.to_restore.size());
  if (st.opts.queues.empty())
    st.opts.queues.emplace_back("celery");
  if (st.opts.running) {
    st.opts.running->held.attach(caf::actor_cast<caf::actor>(self));
    self->attach_functor([running = st.opts.running, id = self->id()] {
      running->held.detach(id);
    });
  }
  self->set_down_handler([=](caf::down_msg& dm) {
    auto& st = self->state;
    for (size_t i = 0; i < st.workers.size(); ++i)
      if (st.workers[i].handle && st.workers[i].handle.address() == dm.source) {
        lose_worker(self, i, dm.reason);
        dispatch(self);
        return;
      }
  });
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
        for (auto& d : st.ready)
          tags.push_back(d.tag);
        for (auto& d : st.suspects)
          tags.push_back(d.tag);
        st.eta_held.clear();
        st.eta_suspects.clear();
        st.rate_cleared.clear();
        st.ready.clear();
        st.suspects.clear();
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
      for (auto& w : st.workers) {
        for (auto& batch : w.batches)
          for (auto& tag : batch)
            tags.push_back(std::move(tag));
        w.batches.clear();
        w.infos.clear();
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
      x["workers"] = std::to_string(live_workers(st));
      x["worker_deaths"] = std::to_string(st.worker_deaths);
      x["given_back"] = std::to_string(st.given_back);
      x["suspects"] = std::to_string(st.suspects.size());
      x["suspects_run"] = std::to_string(st.suspects_run);
      x["poisoned"] = std::to_string(st.poisoned);
      x["canvas_sent"] = std::to_string(st.canvas_sent);
      x["chords_completed"] = std::to_string(st.chords_completed);
      x["rate_limited"] = std::to_string(st.rate_limited);
      return status;
    },
    [=](snapshot_atom) {
      put_snapshot(self);
      return true;
    },
    [=](caf::put_atom, uint64_t index, task_worker_actor& w) {
      auto& st = self->state;
      if (index >= st.workers.size() || !w)
        return;
      // Its predecessor's down message may still be on its way.
      if (st.workers[index].handle)
        lose_worker(self, index, caf::sec::runtime_error);
      self->monitor(w);
      st.workers[index].handle = std::move(w);
      if (st.draining)
        return;
      dispatch(self);
      schedule_poll(self, milliseconds{0});
    },
  };
}

} // namespace vigil
