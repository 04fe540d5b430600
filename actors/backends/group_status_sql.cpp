// A group's status and the alert rules' once-per-frequency state (Sentry's
// GroupRuleStatus), on the event store's connection (schema version 5).

#include "actors/backends/event_store.hpp"

namespace vigil {

caf::expected<bool> event_store::set_group_status(int64_t group_id,
                                                  const std::string& status,
                                                  double now) {
  sql_value resolved_at = nullptr;
  if (status == "resolved")
    resolved_at = now;
  auto n = db_->exec("UPDATE groups SET status = ?, resolved_at = ?"
                     " WHERE id = ?",
                     {status, resolved_at, group_id});
  if (!n)
    return std::move(n.error());
  return *n > 0;
}

caf::expected<bool> event_store::activate_rule(uint64_t project_id,
                                               const std::string& rule_id,
                                               int64_t group_id, double now,
                                               double frequency_secs) {
  // Insert-or-update with a condition: a new row fires; an existing one
  // fires only when last active at or before the threshold (Sentry's
  // exclude(last_active__gt=freq_offset).update(last_active=now)). The
  // row's lock makes a concurrent second call see the first's update.
  auto rows = db_->query(
    "INSERT INTO group_rule_status (project_id, rule_id, group_id,"
    " last_active, date_added) VALUES (?, ?, ?, ?, ?)"
    " ON CONFLICT (project_id, rule_id, group_id) DO UPDATE SET"
    " last_active = excluded.last_active"
    " WHERE group_rule_status.last_active IS NULL"
    " OR group_rule_status.last_active <= ?"
    " RETURNING last_active",
    {static_cast<int64_t>(project_id), rule_id, group_id, now, now,
     now - frequency_secs});
  if (!rows)
    return std::move(rows.error());
  return !rows->empty();
}

caf::error event_store::release_rule(uint64_t project_id,
                                     const std::string& rule_id,
                                     int64_t group_id, double fired_at) {
  auto n = db_->exec("UPDATE group_rule_status SET last_active = NULL"
                     " WHERE project_id = ? AND rule_id = ? AND group_id = ?"
                     " AND last_active = ?",
                     {static_cast<int64_t>(project_id), rule_id, group_id,
                      fired_at});
  if (!n)
    return std::move(n.error());
  return {};
}

} // namespace vigil
