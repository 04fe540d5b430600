#pragma once

// Celery's task events (celery.events; the fields Celery's worker and
// producer send, celery/worker/strategy.py, request.py, app/amqp.py):
// task-sent, task-received, task-started, task-succeeded, task-failed,
// task-retried, task-revoked, task-rejected. Each carries the task's `uuid`;
// hostname, timestamp, clock, utcoffset and pid are added when the event is
// published (celery_event_body).

#include <cstdint>
#include <string>
#include <string_view>

#include "messages/task_message.hpp"
#include "messages/value.hpp"

namespace vigil {

/// One event waiting to be published: its own fields already written as
/// JSON (built on the task's thread with no intermediate value, so that an
/// event costs one string).
struct task_event {
  /// "task-received", ...
  std::string type;
  /// The fields as the members of a JSON object, braces left out:
  /// `"uuid":"...","name":"..."`.
  std::string fields_json;
  /// When it happened, Unix seconds.
  double timestamp = 0;
};

/// task-sent: uuid, root_id, parent_id, name, args, kwargs (the reprs),
/// retries, eta, expires, queue, exchange, routing_key.
task_event task_sent_event(const task_message& msg, std::string_view queue);

/// task-received: uuid, name, args, kwargs, root_id, parent_id, retries,
/// eta, expires (ISO-8601 or null).
task_event task_received_event(const task_message& msg);

/// task-started: uuid.
task_event task_started_event(const task_message& msg);

/// task-succeeded: uuid, result (the return value's repr), runtime
/// (seconds).
task_event task_succeeded_event(const task_message& msg,
                                std::string result_repr, double runtime);

/// task-failed: uuid, exception (the repr of the exception as Python prints
/// it, e.g. "ValueError('bad')"), traceback.
task_event task_failed_event(const task_message& msg, std::string_view type,
                             std::string_view message,
                             std::string traceback);

/// task-retried: uuid, exception, traceback.
task_event task_retried_event(const task_message& msg, std::string_view type,
                              std::string_view message);

/// task-revoked: uuid, terminated, signum, expired.
task_event task_revoked_event(const task_message& msg, bool expired);

/// task-revoked of a running task stopped by revoke(terminate=True), as
/// Celery's Request.terminate announces it: terminated, the signal number.
task_event task_terminated_event(const task_message& msg, int signum);

/// task-rejected: uuid, requeue.
task_event task_rejected_event(const task_message& msg, bool requeue);

/// Python's repr of the exception `type(message)`: "KeyError('nope')".
std::string exception_repr(std::string_view type, std::string_view message);

} // namespace vigil
