#pragma once

// JSON pieces the read API's endpoints share: Sentry's time formats and
// series, and a 200 answer from a document.

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "adapters/http.hpp"
#include "messages/tsdb_messages.hpp"

namespace vigil {

/// A time as Sentry's JSON encoder writes datetimes:
/// "2026-12-03T08:28:04.123456Z" (`unix_us` microseconds since the epoch).
std::string sentry_time(int64_t unix_us);

/// A bucket start as stats_v2 writes its intervals: "2026-12-03T08:00:00Z".
std::string sentry_time_seconds(int64_t unix_seconds);

/// A TSDB series as Sentry answers get_range: [[timestamp, count], ...].
nlohmann::json series_json(const std::vector<tsdb_point>& series);

/// 200 with `doc` as compact JSON (invalid UTF-8 replaced, never thrown on).
http_response json_answer(const nlohmann::json& doc);

} // namespace vigil
