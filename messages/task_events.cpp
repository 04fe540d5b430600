#include "messages/task_events.hpp"

#include "messages/clock.hpp"

namespace vigil {

namespace {

task_event make(std::string type, const task_message& msg) {
  task_event ev;
  ev.type = std::move(type);
  ev.timestamp = static_cast<double>(now_unix_us()) / 1e6;
  ev.fields.emplace_back("uuid", msg.id);
  return ev;
}

value iso_or_null(int64_t unix_us) {
  return unix_us == 0 ? value{} : value{format_iso8601(unix_us)};
}

value text_or_null(const std::string& s) {
  return s.empty() ? value{} : value{s};
}

// The fields task-sent and task-received share.
void add_request(value_map& f, const task_message& msg) {
  f.emplace_back("name", msg.task);
  f.emplace_back("args", msg.argsrepr);
  f.emplace_back("kwargs", msg.kwargsrepr);
  f.emplace_back("root_id", text_or_null(msg.root_id.empty() ? msg.id
                                                             : msg.root_id));
  f.emplace_back("parent_id", text_or_null(msg.parent_id));
  f.emplace_back("retries", static_cast<int64_t>(msg.retries));
  f.emplace_back("eta", iso_or_null(msg.eta_us));
  f.emplace_back("expires", iso_or_null(msg.expires_us));
}

} // namespace

std::string exception_repr(std::string_view type, std::string_view message) {
  return std::string{type} + "(" + to_repr(value{std::string{message}}) + ")";
}

task_event task_sent_event(const task_message& msg, std::string_view queue) {
  auto ev = make("task-sent", msg);
  add_request(ev.fields, msg);
  ev.fields.emplace_back("queue", std::string{queue});
  ev.fields.emplace_back("exchange", "");
  ev.fields.emplace_back("routing_key", std::string{queue});
  return ev;
}

task_event task_received_event(const task_message& msg) {
  auto ev = make("task-received", msg);
  add_request(ev.fields, msg);
  return ev;
}

task_event task_started_event(const task_message& msg) {
  return make("task-started", msg);
}

task_event task_succeeded_event(const task_message& msg,
                                std::string result_repr, double runtime) {
  auto ev = make("task-succeeded", msg);
  ev.fields.emplace_back("result", std::move(result_repr));
  ev.fields.emplace_back("runtime", runtime);
  return ev;
}

task_event task_failed_event(const task_message& msg, std::string_view type,
                             std::string_view message,
                             std::string traceback) {
  auto ev = make("task-failed", msg);
  ev.fields.emplace_back("exception", exception_repr(type, message));
  ev.fields.emplace_back("traceback", std::move(traceback));
  return ev;
}

task_event task_retried_event(const task_message& msg, std::string_view type,
                              std::string_view message) {
  auto ev = make("task-retried", msg);
  ev.fields.emplace_back("exception", exception_repr(type, message));
  ev.fields.emplace_back("traceback", "");
  return ev;
}

task_event task_revoked_event(const task_message& msg, bool expired) {
  auto ev = make("task-revoked", msg);
  ev.fields.emplace_back("terminated", false);
  ev.fields.emplace_back("signum", nullptr);
  ev.fields.emplace_back("expired", expired);
  return ev;
}

task_event task_rejected_event(const task_message& msg, bool requeue) {
  auto ev = make("task-rejected", msg);
  ev.fields.emplace_back("requeue", requeue);
  return ev;
}

} // namespace vigil
