#include "messages/task_events.hpp"

#include "messages/clock.hpp"
#include "messages/json_writer.hpp"

namespace vigil {

namespace {

// Appends `"key":` (after a comma unless first).
void key(std::string& out, std::string_view k) {
  if (!out.empty())
    out += ',';
  append_json_string(out, k);
  out += ':';
}

void text(std::string& out, std::string_view k, std::string_view v) {
  key(out, k);
  append_json_string(out, v);
}

void text_or_null(std::string& out, std::string_view k, std::string_view v) {
  key(out, k);
  if (v.empty())
    out += "null";
  else
    append_json_string(out, v);
}

void iso_or_null(std::string& out, std::string_view k, int64_t unix_us) {
  key(out, k);
  if (unix_us == 0)
    out += "null";
  else
    append_json_string(out, format_iso8601(unix_us));
}

void boolean(std::string& out, std::string_view k, bool v) {
  key(out, k);
  out += v ? "true" : "false";
}

task_event make(std::string type, const task_message& msg) {
  task_event ev;
  ev.type = std::move(type);
  ev.timestamp = static_cast<double>(now_unix_us()) / 1e6;
  ev.fields_json.reserve(96);
  text(ev.fields_json, "uuid", msg.id);
  return ev;
}

// The fields task-sent and task-received share.
void add_request(std::string& f, const task_message& msg) {
  text(f, "name", msg.task);
  text(f, "args", msg.argsrepr);
  text(f, "kwargs", msg.kwargsrepr);
  text_or_null(f, "root_id", msg.root_id.empty() ? msg.id : msg.root_id);
  text_or_null(f, "parent_id", msg.parent_id);
  key(f, "retries");
  f += std::to_string(msg.retries);
  iso_or_null(f, "eta", msg.eta_us);
  iso_or_null(f, "expires", msg.expires_us);
}

void add_exception(std::string& f, std::string_view type,
                   std::string_view message, std::string_view traceback) {
  text(f, "exception", exception_repr(type, message));
  text(f, "traceback", traceback);
}

} // namespace

std::string exception_repr(std::string_view type, std::string_view message) {
  return std::string{type} + "(" + to_repr(value{std::string{message}}) + ")";
}

task_event task_sent_event(const task_message& msg, std::string_view queue) {
  auto ev = make("task-sent", msg);
  add_request(ev.fields_json, msg);
  text(ev.fields_json, "queue", queue);
  text(ev.fields_json, "exchange", "");
  text(ev.fields_json, "routing_key", queue);
  return ev;
}

task_event task_received_event(const task_message& msg) {
  auto ev = make("task-received", msg);
  add_request(ev.fields_json, msg);
  return ev;
}

task_event task_started_event(const task_message& msg) {
  return make("task-started", msg);
}

task_event task_succeeded_event(const task_message& msg,
                                std::string result_repr, double runtime) {
  auto ev = make("task-succeeded", msg);
  text(ev.fields_json, "result", result_repr);
  key(ev.fields_json, "runtime");
  append_json_number(ev.fields_json, runtime);
  return ev;
}

task_event task_failed_event(const task_message& msg, std::string_view type,
                             std::string_view message,
                             std::string traceback) {
  auto ev = make("task-failed", msg);
  add_exception(ev.fields_json, type, message, traceback);
  return ev;
}

task_event task_retried_event(const task_message& msg, std::string_view type,
                              std::string_view message) {
  auto ev = make("task-retried", msg);
  add_exception(ev.fields_json, type, message, "");
  return ev;
}

task_event task_revoked_event(const task_message& msg, bool expired) {
  auto ev = make("task-revoked", msg);
  boolean(ev.fields_json, "terminated", false);
  key(ev.fields_json, "signum");
  ev.fields_json += "null";
  boolean(ev.fields_json, "expired", expired);
  return ev;
}

task_event task_terminated_event(const task_message& msg, int signum) {
  auto ev = make("task-revoked", msg);
  boolean(ev.fields_json, "terminated", true);
  key(ev.fields_json, "signum");
  ev.fields_json += std::to_string(signum);
  boolean(ev.fields_json, "expired", false);
  return ev;
}

task_event task_rejected_event(const task_message& msg, bool requeue) {
  auto ev = make("task-rejected", msg);
  boolean(ev.fields_json, "requeue", requeue);
  return ev;
}

} // namespace vigil
