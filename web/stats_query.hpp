#pragma once

// The query arguments of the stats endpoints, read as Sentry's StatsMixin
// (`_parse_args`) reads them: `until` (Unix seconds, default now), `since`
// (default until minus a day plus a second), `resolution` ("10s", "1h",
// "1d", also "m": one of tsdb.rollups; default the optimal rollup of the
// range). Errors carry the JSON `detail` of the 400 answer.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <caf/expected.hpp>

#include "messages/tsdb_keys.hpp"

namespace vigil {

/// The last value of `name` in `query` (as Django's QueryDict.get),
/// percent-decoded; nullopt when absent.
std::optional<std::string> query_value(std::string_view query,
                                       std::string_view name);

/// Every value of `name` in `query`, in order, percent-decoded.
std::vector<std::string> query_values(std::string_view query,
                                      std::string_view name);

/// A range of the TSDB with its rollup, as the stats endpoints query it.
struct stats_range {
  /// Whole Unix seconds. `start` is rounded so that the buckets match
  /// Sentry's walk back from a fractional `until` (see parse_stats_range).
  int64_t start = 0;
  int64_t end = 0;
  int64_t rollup = 0;
};

/// Most buckets one answer may hold (10 s buckets over 11 days; a daily
/// series since 1970): past it, a 400 that asks for a narrower range.
constexpr int64_t max_stats_buckets = 100000;

/// Reads since/until/resolution from `query` at time `now`; an error
/// (errc::malformed) whose text is the 400's detail.
caf::expected<stats_range> parse_stats_range(std::string_view query,
                                             const std::vector<tsdb_rollup>& rollups,
                                             double now);

/// Sentry's _parse_resolution: "10s", "5m", "1h", "1d" in seconds; nullopt
/// when it is none of these.
std::optional<int64_t> parse_resolution(std::string_view text);

/// Sentry's parse_stats_period: "90", "30m", "24h", "7d", "2w" in seconds
/// (no unit: seconds); nullopt when it is none of these or not positive.
std::optional<int64_t> parse_stats_period(std::string_view text);

} // namespace vigil
