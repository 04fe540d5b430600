#pragma once

// What `vigil.events.post_process` needs to evaluate alert rules, handed to
// it at registration: the rules of each project, the state it reads and
// writes (an interface: the SQL and TSDB behind it are in actors/), and
// where firings go.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <caf/expected.hpp>

#include "messages/alert_rules.hpp"
#include "tasks/alert_sink.hpp"
#include "tasks/task_registry.hpp"

namespace vigil {

/// The reads and writes of rule evaluation. Called from every worker thread
/// at once: implementations keep a connection per thread.
class alert_state {
public:
  virtual ~alert_state();

  /// The group's status ("unresolved", "resolved", "ignored"), nullopt
  /// when there is no such group.
  virtual caf::expected<std::optional<std::string>>
  group_status(int64_t group_id) = 0;

  /// The stored event's JSON, nullopt when not stored.
  virtual caf::expected<std::optional<std::string>>
  event_json(uint64_t project_id, const std::string& event_id) = 0;

  /// The group's events (event_frequency: TSDB model group) or distinct
  /// users (users_frequency: users_affected_by_group) in [start, end], Unix
  /// seconds.
  virtual caf::expected<int64_t> group_count(alert_condition_kind kind,
                                             int64_t group_id, int64_t start,
                                             int64_t end) = 0;

  /// GroupRuleStatus (event_store::activate_rule): true when this call
  /// takes the firing of the rule for the group.
  virtual caf::expected<bool> activate_rule(uint64_t project_id,
                                            const std::string& rule_id,
                                            int64_t group_id, double now,
                                            double frequency_secs) = 0;

  /// Undoes a firing taken at `fired_at` (event_store::release_rule).
  virtual caf::error release_rule(uint64_t project_id,
                                  const std::string& rule_id, int64_t group_id,
                                  double fired_at) = 0;
};

/// The services of the event tasks.
struct event_task_services {
  /// The alert rules of each configured project (projects[].alert-rules).
  std::map<uint64_t, std::vector<alert_rule>> rules;
  /// Without state, no rule is evaluated (post_process only logs).
  std::shared_ptr<alert_state> state;
  /// Where firings go; the logging sink when empty.
  std::shared_ptr<alert_sink> sink;
  /// Unix seconds now; the system clock when empty (tests set it).
  std::function<double()> clock;
};

/// Registers vigil.events.post_process(event_id, project_id, group_id=0,
/// is_new=False, is_regression=False, **kwargs) with `services`: for an
/// unresolved issue, each rule of the project whose conditions and filters
/// pass, and that has not fired for the issue within its frequency, fires:
/// logged at info ("alert rule {id} fired for issue {group} (project {p})
/// by event {e}"), and one record per event, naming every rule that fired,
/// goes to the sink under the timeline `mail:p:{project_id}`. A read or write that
/// fails retries the task, having undone the firings it took.
void register_event_tasks(task_registry& reg,
                          std::shared_ptr<const event_task_services> services);

} // namespace vigil
