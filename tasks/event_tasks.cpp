// Tasks of the event pipeline. `vigil.events.post_process` is what ingestion
// queues for every stored event; it evaluates the project's alert rules
// (see event_tasks.hpp and docs/ALERTS.md).

#include "tasks/event_tasks.hpp"

#include <chrono>

#include <spdlog/spdlog.h>

#include "messages/alert_record.hpp"
#include "messages/errors.hpp"

namespace vigil {

alert_state::~alert_state() = default;

namespace {

task_schema post_process_schema() {
  task_schema s;
  s.name = "vigil.events.post_process";
  s.params = {required("event_id", param_type::text),
              required("project_id", param_type::integer),
              optional("group_id", param_type::integer, int64_t{0}),
              optional("is_new", param_type::boolean, false),
              // Sent since alert rules (issue 17); older producers omit it.
              optional("is_regression", param_type::boolean, false)};
  s.var_kwargs = true;
  return s;
}

bool flag(const task_context& ctx, const char* name) {
  const auto& x = ctx.args.get(name);
  return x.is_bool() && x.as_bool();
}

double system_now() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

task_result retry(const std::string& what, const caf::error& err) {
  spdlog::warn("post_process: {} failed, retrying: {}", what, error_text(err));
  return task_result::retry_after(-1, what + ": " + error_text(err));
}

void log_event(const task_context& ctx) {
  // Every stored event runs this: build the log line only when it shows.
  if (!spdlog::should_log(spdlog::level::debug))
    return;
  spdlog::debug("post_process: event {} of project {} (group {}, new {}, "
                "regression {})",
                to_repr(ctx.args.get("event_id")),
                ctx.args.get_int("project_id"), ctx.args.get_int("group_id"),
                flag(ctx, "is_new"), flag(ctx, "is_regression"));
}

// Sentry's RuleProcessor for one event.
task_result process(const event_task_services& svc, const task_context& ctx) {
  log_event(ctx);
  auto project_id = static_cast<uint64_t>(ctx.args.get_int("project_id"));
  auto group_id = ctx.args.get_int("group_id");
  auto it = svc.rules.find(project_id);
  if (!svc.state || group_id <= 0 || it == svc.rules.end()
      || it->second.empty())
    return task_result::success(nullptr);
  auto& state = *svc.state;
  const auto& rules = it->second;
  const auto& event_id = ctx.args.get("event_id").as_text();
  // Rules apply to unresolved issues only (Sentry's RuleProcessor.apply):
  // a resolved one that got this event was reopened by ingestion first.
  auto status = state.group_status(group_id);
  if (!status)
    return retry("reading the issue", status.error());
  if (!*status || **status != "unresolved")
    return task_result::success(nullptr);
  double now = svc.clock ? svc.clock() : system_now();
  auto now_secs = static_cast<int64_t>(now);
  // The event's level and tags are read from the nodestore, not carried in
  // the message: only a rule whose conditions passed and that has filters
  // needs them (the default rule never does), the task stays small on the
  // hot path, and an event's tags have no bound a message should carry.
  std::optional<alert_event_facts> facts;
  bool fetched = false;
  alert_inputs in;
  in.is_new = flag(ctx, "is_new");
  in.is_regression = flag(ctx, "is_regression");
  in.count = [&](alert_condition_kind kind, int64_t secs) {
    return state.group_count(kind, group_id, now_secs - secs, now_secs);
  };
  in.event = [&]() -> caf::expected<const alert_event_facts*> {
    if (!fetched) {
      auto json = state.event_json(project_id, event_id);
      if (!json)
        return std::move(json.error());
      fetched = true;
      if (*json) {
        auto parsed = parse_alert_event_facts(**json);
        if (parsed)
          facts = std::move(*parsed);
        else
          spdlog::warn("post_process: event {} unreadable, its filters "
                       "fail: {}",
                       event_id, error_text(parsed.error()));
      }
    }
    return facts ? &*facts : nullptr;
  };
  // Every rule is evaluated before any firing is taken, so that a failed
  // read retries the task with nothing changed.
  std::vector<const alert_rule*> passing;
  for (const auto& rule : rules) {
    auto ok = alert_rule_passes(rule, in);
    if (!ok)
      return retry("evaluating rule " + rule.id, ok.error());
    if (*ok)
      passing.push_back(&rule);
  }
  alert_record record;
  record.event_id = event_id;
  record.project_id = project_id;
  record.group_id = group_id;
  record.timestamp = now;
  auto undo = [&] {
    for (const auto& id : record.rule_ids)
      if (auto err = state.release_rule(project_id, id, group_id, now))
        spdlog::warn("post_process: rule {} of issue {} stays marked as "
                     "fired: {}",
                     id, group_id, error_text(err));
  };
  for (const auto* rule : passing) {
    auto took = state.activate_rule(project_id, rule->id, group_id, now,
                                    static_cast<double>(rule->frequency_minutes)
                                      * 60);
    if (!took) {
      undo();
      return retry("recording rule " + rule->id, took.error());
    }
    if (*took)
      record.rule_ids.push_back(rule->id);
  }
  if (record.rule_ids.empty())
    return task_result::success(int64_t{0});
  static logging_alert_sink fallback;
  auto& sink = svc.sink ? *svc.sink : static_cast<alert_sink&>(fallback);
  if (auto err = sink.fired(alert_timeline_key(project_id), record)) {
    undo();
    return retry("adding the alert record", err);
  }
  for (const auto& id : record.rule_ids)
    spdlog::info("alert rule {} fired for issue {} (project {}) by event {}",
                 id, group_id, project_id, event_id);
  return task_result::success(static_cast<int64_t>(record.rule_ids.size()));
}

} // namespace

void register_event_tasks(task_registry& reg,
                          std::shared_ptr<const event_task_services> services) {
  if (!services)
    services = std::make_shared<const event_task_services>();
  reg.add(post_process_schema(), [services](const task_context& ctx) {
    return process(*services, ctx);
  });
}

void register_event_tasks(task_registry& reg) {
  register_event_tasks(reg, nullptr);
}

} // namespace vigil
