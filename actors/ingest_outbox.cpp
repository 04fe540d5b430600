#include "actors/ingest_outbox.hpp"

#include <iterator>

#include <spdlog/spdlog.h>

#include "messages/clock.hpp"
#include "messages/errors.hpp"
#include "messages/post_process_task.hpp"

namespace vigil {

namespace {

/// Rows republished per catch_up call: recovery of a large outbox goes on
/// between batches instead of holding them up.
constexpr size_t recovery_page = 16;

} // namespace

task_outbox::task_outbox(std::string queue)
  : queue_(std::move(queue)), inbox_(std::make_shared<inbox>()) {
  // nop
}

void task_outbox::watch(broker& conn, std::function<void()> wake) {
  if (listener_ || conn.durable())
    return;
  {
    std::lock_guard<std::mutex> guard{inbox_->mtx};
    inbox_->wake = std::move(wake);
  }
  // The broker keeps a weak reference: it stops calling once this outbox
  // (its ingest actor) is gone.
  auto listener = std::make_shared<broker::settled_listener>(
    [box = std::weak_ptr<inbox>{inbox_}](std::vector<std::string> ids) {
      auto b = box.lock();
      if (!b)
        return;
      std::function<void()> wake;
      {
        std::lock_guard<std::mutex> guard{b->mtx};
        // Only the first report of a run wakes the actor: it drains all.
        if (b->ids.empty())
          wake = b->wake;
        if (b->ids.empty())
          b->ids = std::move(ids);
        else
          b->ids.insert(b->ids.end(), std::make_move_iterator(ids.begin()),
                        std::make_move_iterator(ids.end()));
      }
      if (wake)
        wake();
    });
  if (conn.watch_settled(listener))
    listener_ = std::move(listener);
}

void task_outbox::drain() {
  std::vector<std::string> ids;
  {
    std::lock_guard<std::mutex> guard{inbox_->mtx};
    ids.swap(inbox_->ids);
  }
  for (auto& id : ids) {
    auto i = task_row_.find(id);
    if (i == task_row_.end())
      continue; // another producer's task, or one settled before
    auto row = i->second;
    task_row_.erase(i);
    auto r = remaining_.find(row);
    if (r != remaining_.end() && --r->second == 0) {
      remaining_.erase(r);
      settle(row);
    }
  }
}

void task_outbox::settle(int64_t row) {
  settled_.push_back(row);
}

outbox_write task_outbox::prepare(const std::vector<stored_event>& events) {
  outbox_write w;
  w.settled = std::move(settled_);
  settled_.clear();
  auto batch = std::make_shared<post_process_batch>();
  batch->queue = queue_;
  current_ = batch;
  w.record = [batch, &events](const std::vector<group_outcome>& outcomes) {
    batch->tasks.clear();
    batch->tasks.reserve(events.size());
    for (size_t i = 0; i < events.size(); ++i) {
      // Transactions are not issues: Sentry's post_process_group returns
      // early for them, and vigil's post_process runs issue alerts only.
      if (events[i].transaction)
        continue;
      post_process_record t;
      t.task_id = new_uuid4();
      t.event_id = events[i].event_id;
      t.project_id = events[i].project_id;
      t.group_id = outcomes[i].group_id;
      t.is_new = outcomes[i].is_new;
      t.is_regression = outcomes[i].is_regression;
      batch->tasks.push_back(std::move(t));
    }
    return batch->tasks.empty() ? std::string{}
                                : encode_post_process_batch(*batch);
  };
  return w;
}

std::vector<outgoing_task> task_outbox::committed(const outbox_write& w) {
  deleted_ += w.settled.size();
  std::vector<outgoing_task> out;
  if (current_ && w.written != 0)
    out = tasks_of(*current_);
  current_.reset();
  return out;
}

void task_outbox::rolled_back(outbox_write& w) {
  // Still to delete, with the next batch.
  settled_.insert(settled_.end(), w.settled.begin(), w.settled.end());
  w.settled.clear();
  current_.reset();
}

std::vector<outgoing_task>
task_outbox::tasks_of(const post_process_batch& batch) const {
  std::vector<outgoing_task> out;
  out.reserve(batch.tasks.size());
  for (auto& t : batch.tasks)
    out.push_back(make_post_process_task(batch.queue, t.event_id,
                                         t.project_id, t.group_id, t.is_new,
                                         t.task_id, t.is_regression));
  return out;
}

void task_outbox::published(int64_t row, std::vector<outgoing_task> tasks,
                            const caf::error& err, bool durable) {
  if (row == 0)
    return;
  if (err) {
    unpublished_.push_back(pending{row, std::move(tasks)});
    return;
  }
  if (durable || !listener_ || tasks.empty()) {
    settle(row);
    return;
  }
  if (remaining_.count(row) != 0)
    return; // already tracked (republished while its tasks are held)
  remaining_[row] = tasks.size();
  for (auto& t : tasks)
    task_row_[t.msg.id] = row;
}

caf::error task_outbox::catch_up(event_store& store, const publish_fn& publish,
                                 bool durable) {
  while (!unpublished_.empty()) {
    auto& p = unpublished_.front();
    if (auto err = publish(p.tasks))
      return err;
    auto done = std::move(p);
    unpublished_.pop_front();
    published(done.row, std::move(done.tasks), caf::error{}, durable);
  }
  if (recovered_)
    return {};
  if (auto err = bound_recovery(store))
    return err;
  auto rows = store.outbox_rows(recover_after_, recover_until_,
                                recovery_page);
  if (!rows)
    return std::move(rows.error());
  for (auto& row : *rows) {
    auto batch = decode_post_process_batch(row.record);
    if (!batch) {
      // Nothing can republish it: dropped, with a trace of what it was.
      spdlog::error("ingest: outbox row {} is unreadable ({}); deleting it",
                    row.id, error_text(batch.error()));
      settle(row.id);
      recover_after_ = row.id;
      continue;
    }
    auto tasks = tasks_of(*batch);
    if (auto err = publish(tasks))
      return err;
    recovered_tasks_ += tasks.size();
    published(row.id, std::move(tasks), caf::error{}, durable);
    recover_after_ = row.id;
  }
  if (rows->size() < recovery_page) {
    recovered_ = true;
    if (recovered_tasks_ > 0)
      spdlog::info("ingest: republished {} post_process tasks from the "
                   "outbox",
                   recovered_tasks_);
  }
  return {};
}

caf::error task_outbox::bound_recovery(event_store& store) {
  if (recovery_started_)
    return {};
  auto max_id = store.outbox_max_id();
  if (!max_id)
    return std::move(max_id.error());
  recover_until_ = *max_id;
  recovery_started_ = true;
  if (recover_until_ > 0)
    spdlog::info("ingest: republishing the task outbox a previous run left "
                 "(rows up to {})",
                 recover_until_);
  else
    recovered_ = true;
  return {};
}

caf::error task_outbox::flush(event_store& store) {
  if (settled_.empty())
    return {};
  if (auto err = store.delete_outbox(settled_))
    return err;
  deleted_ += settled_.size();
  settled_.clear();
  return {};
}

} // namespace vigil
