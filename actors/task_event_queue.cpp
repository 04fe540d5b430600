#include "actors/task_event_queue.hpp"

#include <algorithm>

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
  // The queue starts again with room for twice the last take, allocated
  // before the lock: otherwise each poll's events regrow it from nothing
  // (reallocations and moves under the lock the producers wait on).
  std::vector<task_event> out;
  out.reserve(next_capacity_);
  {
    std::lock_guard guard{mtx_};
    out.swap(events_);
  }
  next_capacity_ = std::min(max_, std::max<size_t>(64, 2 * out.size()));
  return out;
}

} // namespace vigil
