#include "actors/job_metrics.hpp"

#include "actors/metrics.hpp"

namespace vigil {

job_metrics::job_metrics() : on_(metrics::enabled()) {
  // nop
}

job_metrics::~job_metrics() {
  flush();
}

void job_metrics::start(const std::string& task) {
  if (!on_)
    return;
  if (task != task_) {
    flush();
    task_ = task;
  }
  // Back-to-back runs: the previous finish's clock read starts this one.
  if (!timing_)
    started_ = std::chrono::steady_clock::now();
  timing_ = false;
}

void job_metrics::finish(outcome_kind outcome) {
  if (!on_)
    return;
  auto now = std::chrono::steady_clock::now();
  durations_.push_back(
    std::chrono::duration<double, std::milli>(now - started_).count());
  started_ = now;
  timing_ = true;
  auto i = static_cast<size_t>(outcome);
  if (i < 4)
    ++by_outcome_[i];
}

void job_metrics::flush() {
  if (!on_ || durations_.empty())
    return;
  metrics::incr("jobs.started", static_cast<double>(durations_.size()),
                {{"task", task_}});
  metrics::timings("jobs.duration", durations_, {{"task", task_}});
  for (size_t i = 0; i < 4; ++i) {
    if (by_outcome_[i] == 0)
      continue;
    auto kind = static_cast<outcome_kind>(i);
    auto n = static_cast<double>(by_outcome_[i]);
    metrics::incr("jobs.finished", n,
                  {{"task", task_}, {"status", to_string(kind)}});
    if (kind == outcome_kind::retry)
      metrics::incr("jobs.retried", n, {{"task", task_}});
    by_outcome_[i] = 0;
  }
  durations_.clear();
}

} // namespace vigil
