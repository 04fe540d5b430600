#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <caf/expected.hpp>

namespace vigil {

/// One item of a Sentry envelope: its header's `type`, `content_type` and
/// `item_count` and its payload bytes (not interpreted here).
struct envelope_item {
  std::string type;
  std::string payload;
  std::string content_type;
  /// How many items a container item holds (a v2 span item: `{"items":
  /// [...]}` with content type `application/vnd.sentry.items.span.v2+json`);
  /// absent for a plain item, which is one.
  std::optional<uint64_t> item_count;
  /// An attachment's `filename` and `attachment_type` headers ("" when
  /// absent).
  std::string filename;
  std::string attachment_type;
};

/// The content type of a span container item (SDKs that stream spans send
/// several spans in one `span` item of this type).
constexpr std::string_view span_v2_content_type
  = "application/vnd.sentry.items.span.v2+json";

/// A parsed Sentry envelope: the fields of its header line that ingestion
/// needs, and its items in order.
struct sentry_envelope {
  std::optional<std::string> event_id;
  std::optional<std::string> dsn;
  std::vector<envelope_item> items;
};

/// Default ceiling on the number of items in one envelope.
constexpr size_t default_max_envelope_items = 100;

/// Parses Sentry's envelope format: a header line (a JSON object), then
/// items, each an item header line (a JSON object with a string `type`, an
/// optional `length` and `content_type`) followed by a payload of exactly
/// `length` bytes and an optional '\n', or, without `length`, by a payload
/// that runs to the next '\n' or the end of `body`. Empty lines between
/// items and at the end are skipped.
/// Errors: `errc::malformed` (header line not a JSON object, an item header
/// that is not a JSON object or lacks `type`, a bad or truncated `length`;
/// the message names the item index), `errc::too_large` (more than
/// `max_items` items).
caf::expected<sentry_envelope>
parse_envelope(std::string_view body,
               size_t max_items = default_max_envelope_items);

/// Returns Relay's data category for an envelope item type, the name that
/// quotas and the X-Sentry-Rate-Limits header use:
///   event -> "error"; transaction -> "transaction";
///   security, raw_security -> "security"; attachment -> "attachment";
///   session, sessions -> "session"; profile -> "profile";
///   profile_chunk -> "profile_chunk"; replay_event, replay_recording,
///   replay_video -> "replay"; check_in -> "monitor";
///   user_report -> "user_report"; feedback -> "user_report_v2";
///   span, otel_span -> "span"; log -> "log_item".
/// Returns "" for items Relay never counts against a quota (client_report,
/// form_data, which merges into the event, statsd, metric_buckets,
/// metric_meta) and for unknown types.
std::string_view item_category(std::string_view type);

/// What an item consumes of its category's quotas, as Relay's
/// Item::quantities counts it: an attachment its payload bytes (at least
/// 1), a container item (`item_count` header) that many, anything else 1.
int64_t item_quantity(const envelope_item& item);

} // namespace vigil
