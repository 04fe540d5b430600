#include "actors/task_worker.hpp"

#include <caf/all.hpp>

#include "actors/metrics.hpp"
#include "actors/status.hpp"
#include "tasks/task_runner.hpp"

namespace vigil {

task_worker_actor::behavior_type
task_worker(task_worker_actor::stateful_pointer<task_worker_state> self,
            std::shared_ptr<const task_registry> registry,
            std::string result_serializer) {
  self->state.registry = std::move(registry);
  self->state.result_serializer = std::move(result_serializer);
  return {
    [=](run_atom, std::vector<delivery>& batch) {
      auto& st = self->state;
      std::vector<task_outcome> outcomes;
      outcomes.reserve(batch.size());
      for (auto& d : batch) {
        // The name outlives the run, which takes the message (copied only
        // while metrics record).
        auto task = metrics::enabled() ? d.msg.task : std::string{};
        metrics::incr("jobs.started", 1, {{"task", task}});
        auto started = std::chrono::steady_clock::now();
        outcomes.push_back(run_delivery(*st.registry, std::move(d),
                                        st.result_serializer));
        metrics::timing("jobs.duration", metrics::elapsed_ms(started),
                        {{"task", task}});
        metrics::incr("jobs.finished", 1,
                      {{"task", task},
                       {"status", to_string(outcomes.back().what())}});
        switch (outcomes.back().what()) {
          case outcome_kind::dead_letter: ++st.dead_lettered; break;
          case outcome_kind::retry:
            ++st.retried;
            metrics::incr("jobs.retried", 1, {{"task", task}});
            break;
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
      return status;
    },
  };
}

} // namespace vigil
