#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "messages/task_message.hpp"
#include "messages/task_schema.hpp"
#include "messages/value.hpp"
#include "tasks/task_control.hpp"

namespace vigil {

/// What a task function is given.
struct task_context {
  /// The message being run (id, retries, headers).
  const task_message& msg;
  /// Its arguments, bound to the task's schema.
  const bound_args& args;
  /// Its soft deadline and cancellation flag; null when it has neither.
  const task_control* control = nullptr;

  /// True if the task should stop now (cancelled, or past its soft time
  /// limit): it answers task_result::soft_time_limit_exceeded().
  bool should_stop() const { return control != nullptr && control->should_stop(); }
};

/// What a task function answers.
struct task_result {
  enum kind_t : uint8_t { ok, retry, fail };
  kind_t kind = ok;
  /// The return value (ok).
  value result;
  /// Seconds before the retry; negative = the schema's default_retry_delay.
  double retry_delay = -1;
  /// Exception type and message (retry, fail), as Python would name them.
  std::string error_type;
  std::string error_message;
  /// The exception's Python module ("" = builtins).
  std::string error_module;
  /// A failure that is not retried (a time limit): FAILURE at once.
  bool final = false;

  /// Returns `x` to the caller.
  static task_result success(value x);
  /// Asks to run again after `delay` seconds (negative: the default).
  static task_result retry_after(double delay, std::string reason);
  /// Fails; the task is retried until max_retries, then dead-lettered.
  static task_result failure(std::string type, std::string message);
  /// Celery's SoftTimeLimitExceeded: FAILURE at once, not retried.
  static task_result soft_time_limit_exceeded();
  /// Stopped by revoke(terminate=True): REVOKED
  /// (TaskRevokedError('terminated')), not retried.
  static task_result terminated();
};

/// A task implementation. It may block (workers are detached threads); it
/// should not throw, but an exception is caught and counts as a failure.
using task_function = std::function<task_result(const task_context&)>;

/// A registered task: its schema and its function.
struct task_entry {
  task_schema schema;
  task_function fn;
};

/// The tasks a node can run, by name. Filled at startup, then read-only and
/// shared by every worker.
class task_registry {
public:
  /// Registers (or replaces) a task.
  void add(task_schema schema, task_function fn);

  /// Looks up a task by name; nullptr if unknown.
  const task_entry* find(std::string_view name) const;

  /// Names of every registered task, sorted.
  std::vector<std::string> names() const;

private:
  std::unordered_map<std::string, task_entry> tasks_;
};

/// Registers vigil's built-in diagnostic tasks: vigil.ping(),
/// vigil.echo(value, **kwargs), vigil.repeat(value, times=2),
/// vigil.sleep(seconds) (stops at its soft time limit), vigil.block(seconds)
/// (sleeps ignoring its limits: a hung task, for tests), vigil.flaky(failures); with the environment
/// variable VIGIL_TEST_CRASH_TASK=1 also vigil.test.crash(), which aborts
/// the process (for fault tests only).
void register_builtin_tasks(task_registry& reg);

/// Registers the event pipeline's tasks (vigil.events.post_process).
void register_event_tasks(task_registry& reg);

/// Returns a registry with the built-in tasks.
std::shared_ptr<const task_registry> default_task_registry();

} // namespace vigil
