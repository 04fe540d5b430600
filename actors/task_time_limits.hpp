#pragma once

// Celery's task time limits for a node's workers: the per-task limits set
// by the remote-control `time_limit` command (shared by the node's remote
// control, which sets them, and its workers, which read them), the node's
// time-limit counters, and the thread a worker runs a hard-limited task on
// so that it can give up on it.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>

#include "messages/task_message.hpp"
#include "messages/task_schema.hpp"

namespace vigil {

/// A task's limits in seconds (0 = none).
struct time_limits {
  double soft = 0;
  double hard = 0;
};

/// Per-task limits and counters, shared by a node's workers and its remote
/// control; locks.
class task_time_limits {
public:
  /// Sets `task`'s limits (the `time_limit` command); both 0 removes them.
  void set(const std::string& task, time_limits limits);

  /// The limits `msg` runs with, as Celery's worker picks them: each of
  /// the message's timelimit values if set, else the task's (set by
  /// `time_limit`, else its schema's).
  time_limits effective(const task_message& msg, const task_schema& schema);

  /// Tasks that answered SoftTimeLimitExceeded, and that passed their hard
  /// limit (their thread abandoned).
  std::atomic<uint64_t> soft_exceeded{0};
  std::atomic<uint64_t> hard_exceeded{0};

private:
  std::mutex mtx_;
  std::unordered_map<std::string, time_limits> by_task_;
  /// Lets `effective` skip the lock while no `time_limit` was ever set.
  std::atomic<bool> any_{false};
};

/// The limits of `msg` with no node-wide overrides (`limits` null).
time_limits effective_limits(task_time_limits* limits, const task_message& msg,
                             const task_schema& schema);

/// A thread that runs one job at a time for a worker, which waits for it
/// at most until a deadline. A job past its deadline is abandoned: the
/// thread is detached (its eventual result ignored) and the next job gets a
/// new one, so a hung task never keeps its worker for good.
class bounded_task_thread {
public:
  bounded_task_thread() = default;
  bounded_task_thread(const bounded_task_thread&) = delete;
  bounded_task_thread& operator=(const bounded_task_thread&) = delete;
  ~bounded_task_thread();

  /// Runs `job` on the thread; true if it finished before `deadline`,
  /// false if it was abandoned (it may still finish later, unseen): at the
  /// deadline, or at once when `abort` was called meanwhile (`aborted()`).
  bool run(std::function<void()> job,
           std::chrono::steady_clock::time_point deadline);

  /// A function that makes the next `run` give its job up at once (revoke
  /// with SIGKILL), whether called before or during it; callable from any
  /// thread, harmless after that run.
  std::function<void()> aborter();

  /// Whether the last `run` was given up by its aborter.
  bool aborted() const { return aborted_; }

  /// Threads abandoned so far.
  uint64_t abandoned() const { return abandoned_; }

private:
  struct slot {
    std::mutex mtx;
    std::condition_variable cv;
    std::function<void()> job;
    bool has_job = false;
    bool done = false;
    bool stop = false;
    /// Counts runs; an aborter marks the run it was made for, so that a
    /// late call never aborts a later one.
    uint64_t gen = 0;
    uint64_t abort_gen = 0;
  };
  static void loop(std::shared_ptr<slot> s);
  void ensure_thread();

  std::shared_ptr<slot> slot_;
  std::thread thread_;
  uint64_t abandoned_ = 0;
  bool aborted_ = false;
};

} // namespace vigil
