#pragma once

#include <cstdint>
#include <string>

#include "messages/value.hpp"

namespace vigil {

/// Task states as Celery's result backend names them.
enum class task_state : uint8_t { success, failure, retry, revoked };

/// Returns "SUCCESS", "FAILURE", "RETRY" or "REVOKED".
const char* to_string(task_state s);

/// Builds a Celery exception document: {exc_type, exc_message: [message],
/// exc_module}. Python clients rebuild an exception from it, so `type`
/// should name a real builtins exception (ValueError, RuntimeError, ...).
value make_exception(std::string type, std::string message,
                     std::string module = "builtins");

/// Builds the document Celery stores under `celery-task-meta-<id>`:
/// status, result, traceback, children, date_done (naive UTC ISO; null for
/// RETRY), task_id, plus parent_id / group_id when given.
value make_result_doc(task_state state, const std::string& task_id,
                      value result, int64_t date_done_us,
                      const std::string& traceback = {},
                      const std::string& parent_id = {},
                      const std::string& group_id = {});

} // namespace vigil
