#pragma once

// Reading a project's `alert-rules` from config.yml into messages/
// alert_rules.hpp's rules (see docs/ALERTS.md for the keys).

#include <string>
#include <vector>

#include <caf/error.hpp>
#include <yaml-cpp/yaml.h>

#include "messages/alert_rules.hpp"

namespace vigil {

/// Reads `alert-rules` of the project map `project` into `out`. Absent (or
/// null): `out` is left as it is (the caller's default, Sentry's default
/// rule); an empty list: no rules. Each rule: `id` (required, unique in the
/// project), `label` (default: the id), `conditions` (required, at least
/// one), `filters`, `frequency` (minutes, 1 to 43200, default 30),
/// `action-match` (all, any) and `filter-match` (all, any, none), default
/// all as Sentry's. Errors (errc::bad_config) start with `path` and name the
/// key: "entry 1 (id 1): alert-rules: entry 2 (id 'slow'): conditions:
/// entry 1: unknown condition 'x' (expected first_seen, regression,
/// every_event, event_frequency, users_frequency)".
caf::error read_alert_rules(const YAML::Node& project, const std::string& path,
                            std::vector<alert_rule>& out);

} // namespace vigil
