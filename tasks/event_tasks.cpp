// Tasks of the event pipeline. `vigil.events.post_process` is what ingestion
// queues for every stored event; alert rules and digests hang on it later.

#include <spdlog/spdlog.h>

#include "tasks/task_registry.hpp"

namespace vigil {

void register_event_tasks(task_registry& reg) {
  task_schema post_process;
  post_process.name = "vigil.events.post_process";
  post_process.params = {required("event_id", param_type::text),
                         required("project_id", param_type::integer),
                         optional("group_id", param_type::integer, int64_t{0}),
                         optional("is_new", param_type::boolean, false)};
  post_process.var_kwargs = true;
  reg.add(post_process, [](const task_context& ctx) {
    // Every stored event runs this: build the log line only when it shows.
    if (!spdlog::should_log(spdlog::level::debug))
      return task_result::success(nullptr);
    const auto& is_new = ctx.args.get("is_new");
    spdlog::debug("post_process: event {} of project {} (group {}, new {})",
                  to_repr(ctx.args.get("event_id")),
                  ctx.args.get_int("project_id"), ctx.args.get_int("group_id"),
                  is_new.is_bool() && is_new.as_bool());
    return task_result::success(nullptr);
  });
}

} // namespace vigil
