#include "tasks/task_control.hpp"

namespace vigil {

void task_control::cancel() {
  {
    std::lock_guard guard{mtx_};
    cancelled_.store(true, std::memory_order_release);
  }
  cv_.notify_all();
}

bool task_control::sleep_for(std::chrono::duration<double> d) const {
  auto until = clock::now()
               + std::chrono::duration_cast<clock::duration>(d);
  auto wake = std::min(until, soft_deadline_);
  std::unique_lock lock{mtx_};
  cv_.wait_until(lock, wake, [&] { return cancelled(); });
  return !cancelled() && clock::now() >= until;
}

} // namespace vigil
