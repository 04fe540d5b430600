#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <caf/expected.hpp>

namespace vigil {

/// An event ready to store: its identity, the JSON document and the fields
/// the group upsert needs.
struct normalized_event {
  /// 32 lowercase hex digits.
  std::string event_id;
  /// The document to store: the original JSON text with missing fields
  /// spliced in before its closing brace.
  std::string json;
  /// 32 lowercase hex digits (MD5 of the grouping components).
  std::string grouping_hash;
  std::string title;
  std::string culprit;
  std::string level;
  std::string platform;
  /// Unix seconds: the event's own timestamp, else `received`.
  double timestamp = 0;
  /// The event says `"type": "transaction"` (counted in that category).
  bool transaction = false;
};

/// Maximum nesting depth accepted in an event.
constexpr size_t max_event_depth = 128;

/// Normalizes one Sentry event (the store endpoint's body, or an envelope's
/// event item payload).
/// - event_id: the event's own if 32 hex digits or a dashed UUID
///   (lower-cased, dashes removed), else `event_id_hint` if valid, else a
///   new UUID4.
/// - Adds to the document the fields it lacks: event_id (also when it had
///   to be normalized: a duplicate key later in the object wins in every
///   JSON reader vigil uses), project, received, timestamp, level
///   ("error"; "info" for `"type":"transaction"`), platform ("other").
///   Members that are present but unusable (`"level":null`, a timestamp
///   that is neither a number nor ISO-8601 text) are replaced in place;
///   `project` and `received` are always vigil's.
/// - title: "Type: value" of the last exception value, else the message's
///   first line (100 code points at most), else "<unlabeled event>"; a
///   transaction is titled by its `transaction`. culprit: `transaction`,
///   else "<module or filename> in <function>" of the last in-app frame of
///   the last exception that has one, else "".
/// - grouping_hash from `fingerprint`, else the exception chain with its
///   in-app frames, else the message, else "<unlabeled>".
/// Errors: `errc::malformed` ("event is not a JSON object", "malformed JSON
/// at byte N: ..."), `errc::too_large` (nesting deeper than max_event_depth).
caf::expected<normalized_event>
normalize_event(std::string_view json, uint64_t project_id, double received,
                std::optional<std::string_view> event_id_hint = std::nullopt);

/// Normalizes a 32-hex or dashed UUID text to 32 lowercase hex digits;
/// nullopt if it is neither.
std::optional<std::string> normalize_event_id(std::string_view text);

} // namespace vigil
