#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <caf/expected.hpp>

namespace vigil {

/// Microseconds since the Unix epoch, from the system clock.
int64_t now_unix_us();

/// Seconds since the Unix epoch with their fraction, from the system
/// clock (Python's time.time(), as Sentry's timestamps are).
double now_unix_seconds();

/// Formats a Unix time in microseconds the way Python's
/// `datetime.isoformat()` does for an aware UTC time, which is what Celery
/// puts in `eta` and `expires`: "2026-11-23T03:30:55.607329+00:00".
std::string format_iso8601(int64_t unix_us);

/// Formats a Unix time as a naive UTC ISO string ("2026-11-23T03:57:08.043363"),
/// as Celery writes `date_done` in result documents.
std::string format_iso8601_naive(int64_t unix_us);

/// Parses an ISO-8601 timestamp as Celery's parse_iso8601 accepts it: date,
/// 'T' or ' ', time, optional fraction of any length, optional 'Z' or
/// ±HH:MM offset; a naive time is taken as UTC. Returns Unix microseconds.
caf::expected<int64_t> parse_iso8601(std::string_view text);

/// Returns a random UUID4 in its 36-character text form.
std::string new_uuid4();

} // namespace vigil
