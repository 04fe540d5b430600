#include "actors/task_worker.hpp"

#include <caf/all.hpp>

#include "actors/job_metrics.hpp"
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
      job_metrics jobs;
      for (auto& d : batch) {
        jobs.start(d.msg.task);
        outcomes.push_back(run_delivery(*st.registry, std::move(d),
                                        st.result_serializer));
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
      return status;
    },
  };
}

} // namespace vigil
