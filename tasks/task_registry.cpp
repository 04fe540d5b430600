#include "tasks/task_registry.hpp"

#include <algorithm>

namespace vigil {

task_result task_result::success(value x) {
  task_result r;
  r.result = std::move(x);
  return r;
}

task_result task_result::retry_after(double delay, std::string reason) {
  task_result r;
  r.kind = retry;
  r.retry_delay = delay;
  r.error_type = "Retry";
  r.error_message = std::move(reason);
  return r;
}

task_result task_result::failure(std::string type, std::string message) {
  task_result r;
  r.kind = fail;
  r.error_type = std::move(type);
  r.error_message = std::move(message);
  return r;
}

task_result task_result::soft_time_limit_exceeded() {
  auto r = failure("SoftTimeLimitExceeded", "SoftTimeLimitExceeded()");
  r.error_module = "billiard.exceptions";
  r.final = true;
  return r;
}

task_result task_result::terminated() {
  auto r = failure("TaskRevokedError", "terminated");
  r.error_module = "celery.exceptions";
  r.final = true;
  return r;
}

void task_registry::add(task_schema schema, task_function fn) {
  auto name = schema.name;
  tasks_[name] = task_entry{std::move(schema), std::move(fn)};
}

const task_entry* task_registry::find(std::string_view name) const {
  auto i = tasks_.find(std::string{name});
  return i == tasks_.end() ? nullptr : &i->second;
}

std::vector<std::string> task_registry::names() const {
  std::vector<std::string> out;
  for (auto& [name, entry] : tasks_)
    out.push_back(name);
  std::sort(out.begin(), out.end());
  return out;
}

std::shared_ptr<const task_registry> default_task_registry() {
  auto reg = std::make_shared<task_registry>();
  register_builtin_tasks(*reg);
  register_event_tasks(*reg);
  return reg;
}

} // namespace vigil
