#include "actors/task_event_queue.hpp"

namespace vigil {

void task_event_queue::push(task_event ev) {
  if (!enabled())
    return;
  std::lock_guard guard{mtx_};
  if (events_.size() >= max_) {
    ++dropped_;
    return;
  }
  events_.push_back(std::move(ev));
}

std::vector<task_event> task_event_queue::take() {
  std::vector<task_event> out;
  std::lock_guard guard{mtx_};
  out.swap(events_);
  return out;
}

} // namespace vigil
