#include "actors/task_time_limits.hpp"

namespace vigil {

void task_time_limits::set(const std::string& task, time_limits limits) {
  std::lock_guard guard{mtx_};
  if (limits.soft <= 0 && limits.hard <= 0)
    by_task_.erase(task);
  else
    by_task_[task] = limits;
  any_.store(!by_task_.empty());
}

time_limits task_time_limits::effective(const task_message& msg,
                                        const task_schema& schema) {
  time_limits task{schema.soft_time_limit, schema.time_limit};
  if (any_.load()) {
    std::lock_guard guard{mtx_};
    if (auto i = by_task_.find(msg.task); i != by_task_.end())
      task = i->second;
  }
  return {msg.soft_time_limit > 0 ? msg.soft_time_limit : task.soft,
          msg.time_limit > 0 ? msg.time_limit : task.hard};
}

time_limits effective_limits(task_time_limits* limits, const task_message& msg,
                             const task_schema& schema) {
  if (limits != nullptr)
    return limits->effective(msg, schema);
  return {msg.soft_time_limit > 0 ? msg.soft_time_limit
                                  : schema.soft_time_limit,
          msg.time_limit > 0 ? msg.time_limit : schema.time_limit};
}

void bounded_task_thread::loop(std::shared_ptr<slot> s) {
  std::unique_lock lock{s->mtx};
  for (;;) {
    s->cv.wait(lock, [&] { return s->has_job || s->stop; });
    if (!s->has_job)
      return;
    auto job = std::move(s->job);
    s->has_job = false;
    lock.unlock();
    job();
    job = nullptr;
    lock.lock();
    s->done = true;
    s->cv.notify_all();
  }
}

void bounded_task_thread::ensure_thread() {
  if (slot_)
    return;
  slot_ = std::make_shared<slot>();
  thread_ = std::thread{loop, slot_};
}

std::function<void()> bounded_task_thread::aborter() {
  ensure_thread();
  // For the next run only: a late call never aborts the job after it.
  std::lock_guard guard{slot_->mtx};
  return [s = slot_, gen = slot_->gen + 1] {
    std::lock_guard guard{s->mtx};
    s->abort_gen = gen;
    s->cv.notify_all();
  };
}

bool bounded_task_thread::run(std::function<void()> job,
                              std::chrono::steady_clock::time_point deadline) {
  ensure_thread();
  std::unique_lock lock{slot_->mtx};
  slot_->job = std::move(job);
  slot_->has_job = true;
  slot_->done = false;
  ++slot_->gen;
  slot_->cv.notify_all();
  aborted_ = false;
  if (slot_->cv.wait_until(lock, deadline,
                           [&] {
                             return slot_->done
                                    || slot_->abort_gen == slot_->gen;
                           })
      && slot_->done) {
    return true;
  }
  aborted_ = slot_->abort_gen == slot_->gen;
  // Given up: the thread ends after its job (stop is set), whenever that is.
  slot_->stop = true;
  lock.unlock();
  thread_.detach();
  slot_.reset();
  ++abandoned_;
  return false;
}

bounded_task_thread::~bounded_task_thread() {
  if (!slot_)
    return;
  {
    std::lock_guard guard{slot_->mtx};
    slot_->stop = true;
  }
  slot_->cv.notify_all();
  if (thread_.joinable())
    thread_.join();
}

} // namespace vigil
