#pragma once

#include "messages/task_outcome.hpp"
#include "tasks/task_registry.hpp"

namespace vigil {

/// What a run produced besides its outcome, for Celery's task events.
struct run_report {
  /// repr() of the return value (success).
  std::string result_repr;
  /// The exception (failure, retry, dead letter), as Python would name it.
  std::string error_type;
  std::string error_message;
};

/// Runs one delivery through its task, Celery style: decode the body, bind
/// the arguments to the schema (kwargs-tolerant), call the function, and
/// turn what happened into an outcome. Never throws. Undecodable messages,
/// unknown tasks, bad arguments and exhausted retries become dead letters
/// with the reason. Unless `results` is empty, the outcome carries the
/// Celery result document (SUCCESS, RETRY, FAILURE or REVOKED) to store,
/// serialized as `results` says: "msgpack", "json", or "auto" (as the
/// message's own content type). `control` (may be null) is what the task
/// sees of its soft time limit and cancellation; a task answering
/// SoftTimeLimitExceeded fails at once (FAILURE, dead letter), unretried.
task_outcome run_delivery(const task_registry& reg, delivery d,
                          const std::string& results,
                          const task_control* control = nullptr,
                          run_report* report = nullptr);

/// The outcome of a delivery whose task passed its hard time limit of
/// `limit` seconds (the worker gave up on it): FAILURE TimeLimitExceeded as
/// Celery stores it, its chain and chord failed, its errbacks sent; a dead
/// letter with the reason.
task_outcome time_limit_outcome(const task_registry& reg, delivery d,
                                const std::string& results, double limit);

/// The outcome of a delivery that is not run, revoked or expired
/// (`reason`): REVOKED TaskRevokedError(reason) as Celery's
/// mark_as_revoked stores it (unless the task ignores its result), and,
/// for a chord header part, its REVOKED entry returned to the chord (whose
/// body then fails with ChordError). Acknowledged, not dead-lettered.
task_outcome revoked_outcome(delivery d, const char* reason,
                             const std::string& results);

/// The outcome of a delivery whose thread was abandoned by revoke with
/// terminate=True and SIGKILL: REVOKED TaskRevokedError('terminated') as
/// Celery stores it, its chain and chord failed, its errbacks sent; a dead
/// letter.
task_outcome terminated_outcome(const task_registry& reg, delivery d,
                                const std::string& results);

/// Builds the message that retries `msg`: same id, retries + 1, eta now +
/// `delay` seconds, parent_id set as Celery sets it.
task_message make_retry_message(const task_message& msg, double delay);

} // namespace vigil
