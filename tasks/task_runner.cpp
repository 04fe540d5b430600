#include "tasks/task_runner.hpp"

#include <exception>
#include <mutex>
#include <set>

#include <spdlog/spdlog.h>

#include "messages/clock.hpp"
#include "messages/errors.hpp"
#include "messages/result_doc.hpp"
#include "messages/task_body.hpp"

namespace vigil {

namespace {

// Logs an unknown keyword once per task and key: during a rolling deploy it
// would otherwise flood the log with every message.
void note_unknown_kwargs(const std::string& task, const value_map& extra) {
  static std::mutex mtx;
  static std::set<std::string> seen;
  for (auto& [key, val] : extra) {
    auto id = task + '\0' + key;
    std::lock_guard guard{mtx};
    if (seen.size() < 10000 && seen.insert(id).second)
      spdlog::warn("task {}: ignoring unknown keyword argument '{}' (sent by a "
                   "newer producer?)", task, key);
  }
}

task_outcome make_outcome(delivery d, outcome_kind kind, std::string reason) {
  task_outcome out;
  out.d = std::move(d);
  out.kind = static_cast<uint8_t>(kind);
  out.reason = std::move(reason);
  return out;
}

void attach_doc(task_outcome& out, task_state state, value result,
                const std::string& serializer) {
  auto& msg = out.d.msg;
  auto doc = make_result_doc(state, msg.id, std::move(result), now_unix_us(),
                             {}, msg.parent_id, msg.group);
  std::string_view ct = serializer == "json"      ? content_type_json
                        : serializer == "msgpack" ? content_type_msgpack
                                                  : msg.content_type;
  out.result_doc = encode_as(doc, ct);
}

task_outcome dead(delivery d, std::string reason, const std::string& results,
                  const char* exc_type) {
  auto out = make_outcome(std::move(d), outcome_kind::dead_letter,
                          std::move(reason));
  if (!results.empty())
    attach_doc(out, task_state::failure, make_exception(exc_type, out.reason), results);
  return out;
}

} // namespace

const char* to_string(outcome_kind k) {
  switch (k) {
    case outcome_kind::success: return "success";
    case outcome_kind::retry: return "retry";
    case outcome_kind::dead_letter: return "dead_letter";
    case outcome_kind::expired: return "expired";
  }
  return "?";
}

task_message make_retry_message(const task_message& msg, double delay) {
  auto next = msg;
  next.retries = msg.retries + 1;
  next.eta_us = delay > 0 ? now_unix_us() + static_cast<int64_t>(delay * 1e6)
                          : 0;
  if (next.parent_id.empty())
    next.parent_id = msg.id;
  return next;
}

task_outcome run_delivery(const task_registry& reg, delivery d,
                          const std::string& results) {
  auto& msg = d.msg;
  if (msg.expires_us != 0 && msg.expires_us <= now_unix_us()) {
    auto out = make_outcome(std::move(d), outcome_kind::expired, "expired");
    if (!results.empty())
      attach_doc(out, task_state::revoked, make_exception("TaskRevokedError", "expired",
                                "celery.exceptions"), results);
    return out;
  }
  auto* entry = reg.find(msg.task);
  if (entry == nullptr) {
    auto reason = "unknown task '" + msg.task + "'";
    return dead(std::move(d), std::move(reason), results,
                "NotRegistered");
  }
  auto body = decode_task_body(msg.body, msg.content_type);
  if (!body)
    return dead(std::move(d), error_text(body.error()), results,
                "ValueError");
  auto args = bind_arguments(entry->schema, std::move(body->args),
                             std::move(body->kwargs), msg.schema_version);
  if (!args)
    return dead(std::move(d), error_text(args.error()), results,
                "TypeError");
  if (!args->extra.empty() && !entry->schema.var_kwargs)
    note_unknown_kwargs(msg.task, args->extra);
  task_result res;
  try {
    res = entry->fn(task_context{msg, *args});
  } catch (const std::exception& e) {
    res = task_result::failure("RuntimeError", e.what());
  } catch (...) {
    res = task_result::failure("RuntimeError", "unknown exception");
  }
  if (res.kind == task_result::ok) {
    auto out = make_outcome(std::move(d), outcome_kind::success, {});
    if (!results.empty() && !out.d.msg.ignore_result)
      attach_doc(out, task_state::success, std::move(res.result), results);
    return out;
  }
  auto& schema = entry->schema;
  if (msg.retries >= schema.max_retries) {
    auto reason = "max retries (" + std::to_string(schema.max_retries)
                  + ") exceeded: " + res.error_type + ": " + res.error_message;
    auto out = make_outcome(std::move(d), outcome_kind::dead_letter,
                            std::move(reason));
    if (!results.empty())
      attach_doc(out, task_state::failure, make_exception(res.kind == task_result::retry
                                  ? "MaxRetriesExceededError"
                                  : res.error_type,
                                res.error_message,
                                res.kind == task_result::retry
                                  ? "celery.exceptions"
                                  : "builtins"), results);
    return out;
  }
  auto delay = res.retry_delay >= 0 ? res.retry_delay
                                    : schema.default_retry_delay;
  auto out = make_outcome(std::move(d), outcome_kind::retry,
                          res.error_type + ": " + res.error_message);
  out.retry_delay = delay;
  if (!results.empty())
    attach_doc(out, task_state::retry, make_exception(res.error_type, res.error_message), results);
  return out;
}

} // namespace vigil
