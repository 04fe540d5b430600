#pragma once

// Sentry's job metrics (jobs.started, jobs.finished by status,
// jobs.duration, jobs.retried, tagged with the task) for one batch of a
// task worker: counted and timed locally while the batch runs, recorded
// once per task name at the end, so that a no-op task pays one clock
// read rather than four metric calls.

#include <chrono>
#include <string>
#include <vector>

#include "messages/task_outcome.hpp"

namespace vigil {

class job_metrics {
public:
  job_metrics();
  ~job_metrics();
  job_metrics(const job_metrics&) = delete;
  job_metrics& operator=(const job_metrics&) = delete;

  /// Before running a task named `task`.
  void start(const std::string& task);

  /// After it ran, with what it came to.
  void finish(outcome_kind outcome);

private:
  /// Records what the runs of the current name gave, and resets.
  void flush();

  bool on_;
  std::string task_;
  std::chrono::steady_clock::time_point started_;
  /// The last finish read the clock just now: the next start reuses it.
  bool timing_ = false;
  std::vector<double> durations_;
  uint64_t by_outcome_[4] = {0, 0, 0, 0};
};

} // namespace vigil
