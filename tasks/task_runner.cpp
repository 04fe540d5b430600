#include "tasks/task_runner.hpp"

#include <cstdio>
#include <exception>
#include <mutex>
#include <set>

#include <spdlog/spdlog.h>

#include "messages/canvas.hpp"
#include "messages/clock.hpp"
#include "messages/errors.hpp"
#include "messages/msgpack_codec.hpp"
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

std::string_view result_content_type(const task_message& msg,
                                     const std::string& serializer) {
  return serializer == "json"      ? content_type_json
         : serializer == "msgpack" ? content_type_msgpack
                                   : std::string_view{msg.content_type};
}

void attach_doc(task_outcome& out, task_state state, value result,
                const std::string& serializer) {
  auto& msg = out.d.msg;
  auto doc = make_result_doc(state, msg.id, std::move(result), now_unix_us(),
                             {}, msg.parent_id, msg.group);
  out.result_doc = encode_as(doc, result_content_type(msg, serializer));
}

send_context context_of(const task_message& msg) {
  send_context ctx;
  ctx.parent_id = msg.id;
  ctx.root_id = msg.root_id.empty() ? msg.id : msg.root_id;
  ctx.content_type = msg.content_type;
  ctx.origin = msg.origin;
  ctx.priority = msg.priority;
  return ctx;
}

// The part a chord header task returns to its chord (Celery's
// on_chord_part_return), in any final state.
void return_chord_part(task_outcome& out, const task_embed& embed,
                       const char* state, const value& result,
                       const std::string& serializer) {
  auto& msg = out.d.msg;
  if (embed.chord.is_nil() || msg.group.empty())
    return;
  auto& part = out.canvas.chord;
  part.group_id = msg.group;
  part.group_index = msg.group_index;
  part.entry = encode_chord_entry(msg.id, state, result,
                                  result_content_type(msg, serializer));
  part.body = encode_msgpack(embed.chord);
  part.task_id = msg.id;
  part.root_id = msg.root_id.empty() ? msg.id : msg.root_id;
  part.content_type = msg.content_type;
  part.priority = msg.priority;
}

// What Celery's backend does on a final failure besides storing it: the
// chain members still to run are marked FAILURE with the same exception,
// the chord hears of it, and the errbacks are sent with the failed id.
void add_failure_effects(task_outcome& out, const task_embed& embed,
                         const value& exc, const std::string& serializer,
                         const char* chord_state = "FAILURE") {
  auto& msg = out.d.msg;
  if (!serializer.empty()) {
    for (auto& id : pending_chain_ids(embed)) {
      auto doc = make_result_doc(task_state::failure, id, exc, now_unix_us());
      out.canvas.extra_results.push_back(
        extra_result{id, encode_as(doc, result_content_type(msg, serializer))});
    }
    return_chord_part(out, embed, chord_state, exc, serializer);
  }
  auto ebs = failure_follow_ups(embed, context_of(msg));
  if (ebs)
    out.canvas.follow_ups = std::move(*ebs);
  else
    spdlog::warn("task {} [{}]: errbacks not sent: {}", msg.task, msg.id,
                 error_text(ebs.error()));
}

// Whether a follow-up starts a chord (its size must go to a result
// backend).
bool starts_chord(const std::vector<outgoing_task>& tasks) {
  for (auto& t : tasks)
    if (t.chord_size > 0)
      return true;
  return false;
}

task_outcome dead(delivery d, std::string reason, const std::string& results,
                  const char* exc_type, run_report* report = nullptr) {
  auto out = make_outcome(std::move(d), outcome_kind::dead_letter,
                          std::move(reason));
  if (report != nullptr) {
    report->error_type = exc_type;
    report->error_message = out.reason;
  }
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

namespace {

// A delivery whose run the worker gave up on (its thread abandoned): `exc`
// stored as `state`, its chain and chord failed, its errbacks sent; a dead
// letter with `reason`.
task_outcome abandoned_outcome(const task_registry& reg, delivery d,
                               const std::string& results, task_state state,
                               value exc, std::string reason) {
  auto out = make_outcome(std::move(d), outcome_kind::dead_letter,
                          std::move(reason));
  if (reg.find(out.d.msg.task) != nullptr)
    if (auto body = decode_task_body(out.d.msg.body, out.d.msg.content_type))
      if (auto embed = parse_embed(body->embed))
        add_failure_effects(out, *embed, exc, results,
                            state == task_state::revoked ? "REVOKED"
                                                         : "FAILURE");
  if (!results.empty())
    attach_doc(out, state, std::move(exc), results);
  return out;
}

} // namespace

task_outcome time_limit_outcome(const task_registry& reg, delivery d,
                                const std::string& results, double limit) {
  char secs[32];
  std::snprintf(secs, sizeof secs, "%g", limit);
  std::string reason = std::string{"TimeLimitExceeded("} + secs + ")";
  // Celery stores TimeLimitExceeded(<seconds>): the number itself.
  value_map exc{{"exc_type", "TimeLimitExceeded"},
                {"exc_message", value_array{value{limit}}},
                {"exc_module", "billiard.exceptions"}};
  return abandoned_outcome(reg, std::move(d), results, task_state::failure,
                           value{std::move(exc)}, std::move(reason));
}

task_outcome terminated_outcome(const task_registry& reg, delivery d,
                                const std::string& results) {
  return abandoned_outcome(reg, std::move(d), results, task_state::revoked,
                           make_exception("TaskRevokedError", "terminated",
                                          "celery.exceptions"),
                           "TaskRevokedError: terminated");
}

task_outcome revoked_outcome(delivery d, const char* reason,
                             const std::string& results) {
  auto out = make_outcome(std::move(d), outcome_kind::expired, reason);
  if (results.empty())
    return out;
  auto exc = make_exception("TaskRevokedError", reason, "celery.exceptions");
  auto& msg = out.d.msg;
  if (!msg.group.empty())
    if (auto body = decode_task_body(msg.body, msg.content_type))
      if (auto embed = parse_embed(body->embed))
        return_chord_part(out, *embed, "REVOKED", exc, results);
  if (!msg.ignore_result)
    attach_doc(out, task_state::revoked, std::move(exc), results);
  return out;
}

task_outcome run_delivery(const task_registry& reg, delivery d,
                          const std::string& results,
                          const task_control* control, run_report* report) {
  auto& msg = d.msg;
  if (msg.expires_us != 0 && msg.expires_us <= now_unix_us())
    return revoked_outcome(std::move(d), "expired", results);
  auto* entry = reg.find(msg.task);
  if (entry == nullptr) {
    auto reason = "unknown task '" + msg.task + "'";
    return dead(std::move(d), std::move(reason), results,
                "NotRegistered", report);
  }
  auto body = decode_task_body(msg.body, msg.content_type);
  if (!body)
    return dead(std::move(d), error_text(body.error()), results,
                "ValueError", report);
  auto embed = parse_embed(body->embed);
  if (!embed)
    return dead(std::move(d), error_text(embed.error()), results,
                "ValueError", report);
  if (!embed->chord.is_nil() && results.empty())
    // Celery keeps a chord's progress in the result backend; without one
    // the body could never be sent. Kept for a replay once configured.
    return dead(std::move(d),
                "chord header part, but no result backend is configured "
                "(chords need tasks.result-backend: redis://...)",
                results, "NotImplementedError", report);
  auto args = bind_arguments(entry->schema, std::move(body->args),
                             std::move(body->kwargs), msg.schema_version);
  if (!args) {
    auto out = dead(std::move(d), error_text(args.error()), results,
                    "TypeError", report);
    add_failure_effects(out, *embed, make_exception("TypeError", out.reason),
                        results);
    return out;
  }
  if (!args->extra.empty() && !entry->schema.var_kwargs)
    note_unknown_kwargs(msg.task, args->extra);
  task_result res;
  try {
    res = entry->fn(task_context{msg, *args, control});
  } catch (const std::exception& e) {
    res = task_result::failure("RuntimeError", e.what());
  } catch (...) {
    res = task_result::failure("RuntimeError", "unknown exception");
  }
  if (res.kind == task_result::ok) {
    auto next = success_follow_ups(*embed, res.result, context_of(msg));
    if (next && results.empty() && starts_chord(*next))
      next = caf::make_error(errc::unsupported,
                             "it applies a chord, and chords need "
                             "tasks.result-backend: redis://...");
    if (!next) {
      // As in Celery's tracer: a canvas that cannot be sent fails the task.
      auto reason = "task succeeded, but its canvas could not be sent: "
                    + error_text(next.error());
      auto out = dead(std::move(d), std::move(reason), results, "ValueError", report);
      add_failure_effects(out, *embed, make_exception("ValueError", out.reason),
                          results);
      return out;
    }
    auto out = make_outcome(std::move(d), outcome_kind::success, {});
    out.canvas.follow_ups = std::move(*next);
    if (report != nullptr)
      report->result_repr = to_repr(res.result);
    if (!results.empty())
      return_chord_part(out, *embed, "SUCCESS", res.result, results);
    if (!results.empty() && !out.d.msg.ignore_result)
      attach_doc(out, task_state::success, std::move(res.result), results);
    return out;
  }
  if (report != nullptr) {
    report->error_type = res.error_type;
    report->error_message = res.error_message;
  }
  auto& schema = entry->schema;
  if (res.final && control != nullptr
      && res.error_type == "SoftTimeLimitExceeded")
    control->soft_exceeded.store(true);
  if (res.final || msg.retries >= schema.max_retries) {
    auto reason = res.final
                    ? res.error_type + ": " + res.error_message
                    : "max retries (" + std::to_string(schema.max_retries)
                        + ") exceeded: " + res.error_type + ": "
                        + res.error_message;
    auto out = make_outcome(std::move(d), outcome_kind::dead_letter,
                            std::move(reason));
    auto exc = make_exception(res.kind == task_result::retry
                                ? "MaxRetriesExceededError"
                                : res.error_type,
                              res.error_message,
                              res.kind == task_result::retry
                                ? "celery.exceptions"
                              : res.error_module.empty()
                                ? "builtins"
                                : res.error_module);
    bool revoked = res.error_type == "TaskRevokedError";
    add_failure_effects(out, *embed, exc, results,
                        revoked ? "REVOKED" : "FAILURE");
    if (!results.empty())
      // A task stopped by revoke(terminate=True) is REVOKED, as in Celery.
      attach_doc(out, revoked ? task_state::revoked : task_state::failure,
                 std::move(exc), results);
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
