#include "actors/task_worker.hpp"

#include <optional>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/job_metrics.hpp"
#include "actors/status.hpp"
#include "tasks/task_runner.hpp"

namespace vigil {

namespace {

using steady = std::chrono::steady_clock;

steady::time_point after(double seconds) {
  return steady::now() + std::chrono::duration_cast<steady::duration>(
                           std::chrono::duration<double>(seconds));
}

// Runs one delivery within its time limits (see task_worker); `report`
// (may be null) gets what the task events tell.
task_outcome run_limited(task_worker_state& st, delivery d,
                         run_report* report) {
  auto* entry = st.registry->find(d.msg.task);
  if (entry == nullptr)
    return run_delivery(*st.registry, std::move(d), st.result_serializer,
                        nullptr, report);
  auto lim = effective_limits(st.shared.time_limits.get(), d.msg,
                              entry->schema);
  auto* running = st.shared.running.get();
  if (lim.soft <= 0 && lim.hard <= 0 && running == nullptr)
    return run_delivery(*st.registry, std::move(d), st.result_serializer,
                        nullptr, report);
  auto control = std::make_shared<task_control>(
    lim.soft > 0 ? after(lim.soft) : steady::time_point::max());
  // A task with a hard limit runs on a thread the worker can abandon: at
  // its limit, or at once on revoke(terminate=True, signal=SIGKILL).
  std::function<void()> kill;
  if (lim.hard > 0) {
    if (!st.bounded)
      st.bounded = std::make_unique<bounded_task_thread>();
    kill = st.bounded->aborter();
  }
  // Listed (inspect active, revoke terminate=True) while it runs.
  struct listed {
    running_tasks* running;
    std::string id;
    ~listed() {
      if (running != nullptr)
        running->finished(id);
    }
  } guard{running, running != nullptr ? d.msg.id : std::string{}};
  if (running != nullptr)
    running->started(d, control, std::move(kill));
  auto count_soft = [&] {
    if (!control->soft_exceeded.load())
      return;
    ++st.soft_timeouts;
    if (st.shared.time_limits)
      ++st.shared.time_limits->soft_exceeded;
  };
  if (lim.hard <= 0) {
    auto out = run_delivery(*st.registry, std::move(d), st.result_serializer,
                            control.get(), report);
    count_soft();
    return out;
  }
  // The job owns what it touches: once abandoned, it outlives this call.
  auto copy = d;
  auto result = std::make_shared<std::optional<task_outcome>>();
  auto told = std::make_shared<run_report>();
  auto job = [registry = st.registry, serializer = st.result_serializer,
              control, result, told, d = std::move(d)]() mutable {
    *result = run_delivery(*registry, std::move(d), serializer, control.get(),
                           told.get());
  };
  if (st.bounded->run(std::move(job), after(lim.hard))) {
    count_soft();
    if (report != nullptr)
      *report = std::move(*told);
    return std::move(**result);
  }
  control->cancel();
  if (st.bounded->aborted()) {
    spdlog::warn("task {} [{}] terminated (SIGKILL): its thread is "
                 "abandoned, the worker carries on with a new one",
                 copy.msg.task, copy.msg.id);
    auto out = terminated_outcome(*st.registry, std::move(copy),
                                  st.result_serializer);
    if (report != nullptr) {
      report->error_type = "TaskRevokedError";
      report->error_message = "terminated";
    }
    return out;
  }
  ++st.hard_timeouts;
  if (st.shared.time_limits)
    ++st.shared.time_limits->hard_exceeded;
  spdlog::error("task {} [{}]: hard time limit ({} s) exceeded: its thread "
                "is abandoned, the worker carries on with a new one",
                copy.msg.task, copy.msg.id, lim.hard);
  auto out = time_limit_outcome(*st.registry, std::move(copy),
                                st.result_serializer, lim.hard);
  if (report != nullptr) {
    report->error_type = "TimeLimitExceeded";
    report->error_message = out.reason;
  }
  return out;
}

// The event that tells how a run ended (Celery's request.on_success,
// on_retry, on_failure; an expired one is revoked).
task_event outcome_event(const task_outcome& out, run_report& rep,
                         double runtime) {
  const auto& msg = out.d.msg;
  switch (out.what()) {
    case outcome_kind::success:
      return task_succeeded_event(msg, std::move(rep.result_repr), runtime);
    case outcome_kind::retry:
      return task_retried_event(msg, rep.error_type, rep.error_message);
    case outcome_kind::expired:
      return task_revoked_event(msg, true);
    case outcome_kind::dead_letter:
      break;
  }
  // Stopped by revoke(terminate=True): abandoned at once (SIGKILL), or it
  // saw its cancellation flag (any other signal, SIGTERM by default).
  if (rep.error_type == "TaskRevokedError")
    return task_terminated_event(
      msg, out.reason == "TaskRevokedError: terminated" ? 9 : 15);
  return task_failed_event(msg,
                           rep.error_type.empty() ? "Exception" : rep.error_type,
                           rep.error_message.empty() ? out.reason
                                                     : rep.error_message,
                           out.reason);
}

// Runs one delivery, telling its start and its end when task events are on.
task_outcome run_one(task_worker_state& st, delivery d) {
  auto* events = st.shared.events.get();
  if (events == nullptr || !events->enabled())
    return run_limited(st, std::move(d), nullptr);
  events->push(task_started_event(d.msg));
  auto t0 = steady::now();
  run_report rep;
  auto out = run_limited(st, std::move(d), &rep);
  auto runtime = std::chrono::duration<double>(steady::now() - t0).count();
  events->push(outcome_event(out, rep, runtime));
  return out;
}

} // namespace

task_worker_actor::behavior_type
task_worker(task_worker_actor::stateful_pointer<task_worker_state> self,
            std::shared_ptr<const task_registry> registry,
            std::string result_serializer, worker_shared shared) {
  self->state.registry = std::move(registry);
  self->state.result_serializer = std::move(result_serializer);
  self->state.shared = std::move(shared);
  return {
    [=](run_atom, std::vector<delivery>& batch) {
      auto& st = self->state;
      std::vector<task_outcome> outcomes;
      outcomes.reserve(batch.size());
      job_metrics jobs;
      for (auto& d : batch) {
        jobs.start(d.msg.task);
        outcomes.push_back(run_one(st, std::move(d)));
        jobs.finish(outcomes.back().what());
        switch (outcomes.back().what()) {
          case outcome_kind::dead_letter: ++st.dead_lettered; break;
          case outcome_kind::retry: ++st.retried; break;
          default: break;
        }
      }
      st.processed += batch.size();
      return outcomes;
    },
    [=](status_atom) {
      auto& st = self->state;
      status_counters c;
      c.processed = st.processed;
      auto status = make_status(self, c);
      status.extra["dead_lettered"] = std::to_string(st.dead_lettered);
      status.extra["retried"] = std::to_string(st.retried);
      status.extra["soft_time_limits_exceeded"] = std::to_string(st.soft_timeouts);
      status.extra["hard_time_limits_exceeded"] = std::to_string(st.hard_timeouts);
      status.extra["threads_abandoned"] = std::to_string(
        st.bounded ? st.bounded->abandoned() : 0);
      return status;
    },
  };
}

} // namespace vigil
