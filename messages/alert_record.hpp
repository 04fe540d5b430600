#pragma once

// What a firing of alert rules leaves for the digests: one record per event
// that fired at least one rule, the value stored in the project's timeline
// `mail:p:{project_id}` (Sentry's event_to_record: Record(event_id,
// Notification(event, rule ids), timestamp)).

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <caf/expected.hpp>

namespace vigil {

/// One timeline record.
struct alert_record {
  /// 32 hex digits.
  std::string event_id;
  uint64_t project_id = 0;
  int64_t group_id = 0;
  /// The ids of the rules that fired for the event, in configuration order.
  std::vector<std::string> rule_ids;
  /// When the rules fired, Unix seconds (the record's score).
  double timestamp = 0;
};

/// The digest timeline of a project: "mail:p:{project_id}" (Sentry's
/// get_digest_key for the mail plugin's project target).
std::string alert_timeline_key(uint64_t project_id);

/// Encodes a record as a msgpack map {v: 1, event_id, project_id, group_id,
/// rule_ids, timestamp}.
std::string encode_alert_record(const alert_record& r);

/// Decodes a record, kwargs-tolerant as the task messages are: unknown keys
/// are ignored, a missing one keeps its default; only a value of the wrong
/// type, or a missing event_id, is an error (errc::malformed).
caf::expected<alert_record> decode_alert_record(std::string_view bytes);

} // namespace vigil
