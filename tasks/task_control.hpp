#pragma once

// What a running task is told while it runs: when its soft time limit
// passes and whether it was cancelled (its hard limit gave up on it, or a
// revoke with terminate=True). C++ cannot interrupt a thread, so a task
// that may run long checks `should_stop()` (or sleeps with `sleep_for`) and
// answers task_result::soft_time_limit_exceeded() or stops early.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>

namespace vigil {

class task_control {
public:
  using clock = std::chrono::steady_clock;

  /// `soft_deadline`: when the soft time limit passes (max = none).
  explicit task_control(clock::time_point soft_deadline = clock::time_point::max())
    : soft_deadline_(soft_deadline) {}

  task_control(const task_control&) = delete;
  task_control& operator=(const task_control&) = delete;

  /// When the soft time limit passes (clock::time_point::max() if none).
  clock::time_point soft_deadline() const { return soft_deadline_; }

  /// True once the soft time limit passed.
  bool soft_limit_passed() const { return clock::now() >= soft_deadline_; }

  /// Sets the cancellation flag and wakes a task in `sleep_for`.
  void cancel();

  /// True once cancelled.
  bool cancelled() const { return cancelled_.load(std::memory_order_acquire); }

  /// True if the task should stop now: cancelled or past its soft limit.
  bool should_stop() const { return cancelled() || soft_limit_passed(); }

  /// Sleeps `d`, waking early when the task should stop; false if it woke
  /// early.
  bool sleep_for(std::chrono::duration<double> d) const;

  /// Set by the runner when the task answered SoftTimeLimitExceeded (for
  /// the worker's counters).
  mutable std::atomic<bool> soft_exceeded{false};

private:
  clock::time_point soft_deadline_;
  std::atomic<bool> cancelled_{false};
  mutable std::mutex mtx_;
  mutable std::condition_variable cv_;
};

} // namespace vigil
