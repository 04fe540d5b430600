#pragma once

// Alert rules as data, and their evaluation given the facts of one event:
// Sentry's issue alert rules (sentry.rules: conditions first_seen_event,
// regression_event, every_event, event_frequency, event_unique_user_
// frequency; filters level and tagged_event; RuleProcessor). Where the facts
// come from (the TSDB, the nodestore) and the once-per-frequency state
// (GroupRuleStatus) are the caller's: see tasks/event_tasks.cpp.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <caf/expected.hpp>

namespace vigil {

/// What a condition tests.
enum class alert_condition_kind {
  /// The event created its issue (Sentry's FirstSeenEventCondition).
  first_seen,
  /// The event reopened a resolved issue (RegressionEventCondition).
  regression,
  /// Every event (EveryEventCondition).
  every_event,
  /// The events in the interval exceed `value`
  /// (EventFrequencyCondition).
  event_frequency,
  /// The distinct users in the interval exceed `value`
  /// (EventUniqueUserFrequencyCondition).
  users_frequency,
};

/// "first_seen", "regression", "every_event", "event_frequency" or
/// "users_frequency": the names config.yml uses.
const char* to_string(alert_condition_kind x);

/// One condition of a rule.
struct alert_condition {
  alert_condition_kind kind = alert_condition_kind::first_seen;
  /// event_frequency, users_frequency: the count to exceed.
  int64_t value = 0;
  /// event_frequency, users_frequency: the interval's name ("1h") and its
  /// length in seconds.
  std::string interval;
  int64_t interval_secs = 0;
};

/// How a level filter compares (Sentry's MatchType EQUAL, GREATER_OR_EQUAL,
/// LESS_OR_EQUAL).
enum class level_match { gte, eq, lte };

/// One filter of a rule.
struct alert_filter {
  enum kind_t { level, tag };
  kind_t kind = level;
  /// level: the comparison and the level's number (see alert_level_number).
  level_match match = level_match::gte;
  int level_number = 40;
  /// tag: the key and the value it must equal (compared case-insensitively,
  /// as Sentry's TaggedEventFilter lower-cases both).
  std::string key;
  std::string value;
};

/// How a rule combines its conditions or filters (Sentry's action_match and
/// filter_match).
enum class alert_match { all, any, none };

/// "all", "any" or "none".
const char* to_string(alert_match x);

/// One issue alert rule of a project.
struct alert_rule {
  std::string id;
  std::string label;
  std::vector<alert_condition> conditions;
  std::vector<alert_filter> filters;
  /// Sentry's Rule.DEFAULT_CONDITION_MATCH and DEFAULT_FILTER_MATCH: all.
  alert_match action_match = alert_match::all;
  alert_match filter_match = alert_match::all;
  /// Minutes between two firings for one issue (Rule.DEFAULT_FREQUENCY).
  int64_t frequency_minutes = 30;
};

/// Sentry's default rule for a new project: "Send a notification for new
/// issues", first seen, every 30 minutes at most.
alert_rule default_alert_rule();

/// The seconds of an interval name Sentry's frequency conditions take (1m,
/// 5m, 15m, 1h, 1d, 1w, 30d); nullopt for any other.
std::optional<int64_t> alert_interval_secs(std::string_view name);

/// The interval names, comma-separated, for error messages.
std::string_view alert_interval_names();

/// A level's number as Sentry's LOG_LEVELS_MAP gives it: debug 10, info 20,
/// warning 30 (also "warn"), error 40, fatal 50; nullopt for any other.
std::optional<int> alert_level_number(std::string_view name);

/// The event's facts a filter reads: its level and its tags, Sentry's
/// event.tags (the event's own `tags`, plus level, environment and release
/// as Sentry's normalization tags them).
struct alert_event_facts {
  std::string level = "error";
  std::vector<std::pair<std::string, std::string>> tags;
};

/// Reads the facts from a stored event's JSON: `tags` as an object or as a
/// list of [key, value] pairs (both are what SDKs send); a non-string value
/// is skipped. An error only when the JSON is not an object.
caf::expected<alert_event_facts> parse_alert_event_facts(std::string_view json);

/// What a rule is evaluated on: the event's flags, and the facts that cost
/// a read, asked for only when a condition or filter needs them.
struct alert_inputs {
  bool is_new = false;
  bool is_regression = false;
  /// The events (event_frequency) or distinct users
  /// (users_frequency) over the last `interval_secs`.
  std::function<caf::expected<int64_t>(alert_condition_kind, int64_t)> count;
  /// The event's facts; nullptr when the event is not stored (then every
  /// filter fails).
  std::function<caf::expected<const alert_event_facts*>()> event;
};

/// Whether one condition holds. Sentry's frequency shortcut: a new issue
/// never passes a threshold above 1 (its first event cannot exceed it), so
/// no count is read.
caf::expected<bool> alert_condition_passes(const alert_condition& c,
                                           const alert_inputs& in);

/// Whether one filter holds for the event's facts.
bool alert_filter_passes(const alert_filter& f, const alert_event_facts& ev);

/// Whether the rule's conditions and filters pass (not its frequency: the
/// caller's state decides that). Conditions are combined by action_match,
/// filters by filter_match (config requires at least one condition; an
/// empty list here passes). Filters are read only when the conditions
/// passed.
caf::expected<bool> alert_rule_passes(const alert_rule& rule,
                                      const alert_inputs& in);

} // namespace vigil
