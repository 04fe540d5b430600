#pragma once

// The state alert rules read and write (tasks/event_tasks.hpp's
// alert_state) on the node's services: groups, events and GroupRuleStatus
// in the event store's database, counts in the TSDB.

#include <memory>
#include <string>

#include "actors/backends/tsdb.hpp"
#include "adapters/sql.hpp"
#include "tasks/event_tasks.hpp"

namespace vigil {

/// Where the state is.
struct alert_state_options {
  /// The event store's database (db.url resolved) and how to open it.
  std::string db_url;
  sql_options db_options;
  /// The TSDB (tsdb.backend): the memory backend shares the node's series.
  tsdb_backend_options tsdb;
};

/// The state on SQL and the TSDB. Each worker thread opens its own
/// connections on first use and again after a failure.
std::shared_ptr<alert_state> make_alert_state(alert_state_options opts);

} // namespace vigil
