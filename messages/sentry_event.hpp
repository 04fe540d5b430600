#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <caf/expected.hpp>
#include "messages/inbound_filters.hpp"

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
  /// The user as Sentry's EventUser tags it (`sentry:user`), what the
  /// TSDB's users-affected counts record: "id:{id}", else "email:{email}",
  /// else "username:{username}", else "ip:{ip_address}" (the address after
  /// the IP normalization below); "" when the event names no user.
  std::string user_identity;
  /// The event's `environment` when it is one Sentry accepts (see
  /// valid_environment_name); "" otherwise.
  std::string environment;
  /// What the inbound filters look at; filled only when
  /// normalize_options::filter_facts asks for it.
  filter_facts facts;
};

/// A new random event id: 32 lowercase hex digits.
std::string new_event_id();

/// Whether `name` is an environment name Sentry keeps: 1 to 64 bytes,
/// neither "." nor "..", without line breaks, tabs or "/" (Relay's rules;
/// an event with another name is stored without an environment).
bool valid_environment_name(std::string_view name);

/// What normalization knows about an event beyond its JSON.
struct normalize_options {
  /// The envelope header's event_id, used when the event has no valid one.
  std::optional<std::string_view> event_id_hint;
  /// The sending client's address (the socket's, or X-Forwarded-For's
  /// first with web.trust-forwarded-for); "" = unknown. Resolves
  /// `{{auto}}` as Relay does, see normalize_event.
  std::string_view client_ip;
  /// The payload came as an envelope `transaction` item: it is a
  /// transaction whatever its `type` says (Relay sets the type).
  bool transaction = false;
  /// Fill normalized_event::facts (the project has inbound filters).
  bool filter_facts = false;
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
/// - IP addresses, as Relay's normalize_ip_addresses (`user` or its legacy
///   name `sentry.interfaces.User`): `request.env.REMOTE_ADDR` and
///   `user.ip_address` that are `"{{auto}}"` become `client_ip`; a user
///   without ip_address then takes a valid REMOTE_ADDR, else, for platforms
///   javascript, cocoa and objc only, `client_ip` (user created if absent).
/// - user_identity from the user interface (`user`, else its legacy name),
///   an `id` given as a number read as its digits.
/// Errors: `errc::malformed` ("event is not a JSON object", "malformed JSON
/// at byte N: ..."), `errc::too_large` (nesting deeper than max_event_depth).
caf::expected<normalized_event>
normalize_event(std::string_view json, uint64_t project_id, double received,
                const normalize_options& opts);

/// normalize_event with only an event_id hint.
inline caf::expected<normalized_event>
normalize_event(std::string_view json, uint64_t project_id, double received,
                std::optional<std::string_view> event_id_hint = std::nullopt) {
  normalize_options opts;
  opts.event_id_hint = event_id_hint;
  return normalize_event(json, project_id, received, opts);
}

/// Whether `text` is an IPv4 or IPv6 address (no port, no brackets).
bool is_ip_address(std::string_view text);

/// Normalizes a 32-hex or dashed UUID text to 32 lowercase hex digits;
/// nullopt if it is neither.
std::optional<std::string> normalize_event_id(std::string_view text);

} // namespace vigil
