#pragma once

#include "messages/task_outcome.hpp"
#include "tasks/task_registry.hpp"

namespace vigil {

/// Runs one delivery through its task, Celery style: decode the body, bind
/// the arguments to the schema (kwargs-tolerant), call the function, and
/// turn what happened into an outcome. Never throws. Undecodable messages,
/// unknown tasks, bad arguments and exhausted retries become dead letters
/// with the reason. Unless `results` is empty, the outcome carries the
/// Celery result document (SUCCESS, RETRY, FAILURE or REVOKED) to store,
/// serialized as `results` says: "msgpack", "json", or "auto" (as the
/// message's own content type).
task_outcome run_delivery(const task_registry& reg, delivery d,
                          const std::string& results);

/// Builds the message that retries `msg`: same id, retries + 1, eta now +
/// `delay` seconds, parent_id set as Celery sets it.
task_message make_retry_message(const task_message& msg, double delay);

} // namespace vigil
