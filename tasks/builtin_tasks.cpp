// vigil's diagnostic tasks, always registered: they let an operator (or a
// test) check a deployment end to end without any application code.

#include <chrono>
#include <cstdlib>
#include <string_view>
#include <thread>

#include <sys/resource.h>

#include "tasks/task_registry.hpp"

namespace vigil {

void register_builtin_tasks(task_registry& reg) {
  task_schema ping;
  ping.name = "vigil.ping";
  reg.add(ping, [](const task_context&) { return task_result::success("pong"); });

  task_schema echo;
  echo.name = "vigil.echo";
  echo.params = {required("value", param_type::any)};
  echo.var_kwargs = true;
  reg.add(echo, [](const task_context& ctx) {
    return task_result::success(ctx.args.get("value"));
  });

  // Shows kwargs tolerance: `times` was added in schema version 2 with a
  // default, so a message from an older producer still runs.
  task_schema repeat;
  repeat.name = "vigil.repeat";
  repeat.version = 2;
  repeat.params = {required("value", param_type::any),
                   optional("times", param_type::integer, int64_t{2})};
  // Version 1 called the count `n`.
  repeat.upgraders[1] = [](value_array&, value_map& kwargs) {
    for (auto& [key, val] : kwargs)
      if (key == "n")
        key = "times";
  };
  reg.add(repeat, [](const task_context& ctx) {
    auto times = ctx.args.get_int("times");
    if (times < 0 || times > 10000)
      return task_result::failure("ValueError", "times must be 0..10000");
    value_array out(static_cast<size_t>(times), ctx.args.get("value"));
    return task_result::success(std::move(out));
  });

  task_schema sleep;
  sleep.name = "vigil.sleep";
  sleep.params = {required("seconds", param_type::number)};
  reg.add(sleep, [](const task_context& ctx) {
    auto secs = ctx.args.get_double("seconds");
    if (secs < 0 || secs > 3600)
      return task_result::failure("ValueError",
                                  "seconds must be between 0 and 3600");
    auto d = std::chrono::duration<double>(secs);
    if (ctx.control == nullptr)
      std::this_thread::sleep_for(d);
    else if (!ctx.control->sleep_for(d))
      return ctx.control->cancelled() ? task_result::terminated()
                                      : task_result::soft_time_limit_exceeded();
    return task_result::success(nullptr);
  });

  // A hung task: sleeps without looking at its soft limit or its
  // cancellation flag, so only the hard time limit frees its worker.
  task_schema block;
  block.name = "vigil.block";
  block.params = {required("seconds", param_type::number)};
  reg.add(block, [](const task_context& ctx) {
    auto secs = ctx.args.get_double("seconds");
    if (secs < 0 || secs > 3600)
      return task_result::failure("ValueError",
                                  "seconds must be between 0 and 3600");
    std::this_thread::sleep_for(std::chrono::duration<double>(secs));
    return task_result::success("unblocked");
  });

  task_schema flaky;
  flaky.name = "vigil.flaky";
  flaky.params = {required("failures", param_type::integer)};
  flaky.max_retries = 100;
  reg.add(flaky, [](const task_context& ctx) {
    auto failures = ctx.args.get_int("failures");
    if (ctx.msg.retries < failures)
      return task_result::retry_after(0, "flaky: attempt "
                                           + std::to_string(ctx.msg.retries + 1)
                                           + " of "
                                           + std::to_string(failures + 1));
    return task_result::success(int64_t{ctx.msg.retries} + 1);
  });

  // Test-only, and registered only when VIGIL_TEST_CRASH_TASK=1, so that
  // no producer can take a production worker down: aborts the whole
  // process, as a task that segfaults would (tests/faults/).
  if (const char* on = std::getenv("VIGIL_TEST_CRASH_TASK");
      on != nullptr && std::string_view{on} == "1") {
    task_schema crash;
    crash.name = "vigil.test.crash";
    reg.add(crash, [](const task_context&) -> task_result {
      rlimit no_core{0, 0}; // a crash on purpose leaves no core file
      setrlimit(RLIMIT_CORE, &no_core);
      std::abort();
    });
  }
}

} // namespace vigil
