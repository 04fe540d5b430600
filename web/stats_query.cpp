#include "web/stats_query.hpp"

#include <charconv>
#include <cmath>

#include "messages/errors.hpp"
#include "messages/percent_encoding.hpp"

namespace vigil {

namespace {

caf::error bad(std::string text) {
  return caf::make_error(errc::malformed, std::move(text));
}

/// Python's float() on a query value, limited to what a datetime holds
/// (0 up to year 9999): nullopt otherwise.
std::optional<double> parse_timestamp(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  if (!s.empty() && s.front() == '+')
    s.remove_prefix(1);
  double x = 0;
  auto res = std::from_chars(s.data(), s.data() + s.size(), x);
  if (s.empty() || res.ec != std::errc{} || res.ptr != s.data() + s.size())
    return std::nullopt;
  if (!std::isfinite(x) || x < 0 || x > 253402300799.0)
    return std::nullopt;
  return x;
}

} // namespace

std::optional<std::string> query_value(std::string_view query,
                                       std::string_view name) {
  std::optional<std::string> out;
  for (auto& [k, v] : query_pairs(query))
    if (percent_decode_query(k) == name)
      out = percent_decode_query(v);
  return out;
}

std::vector<std::string> query_values(std::string_view query,
                                      std::string_view name) {
  std::vector<std::string> out;
  for (auto& [k, v] : query_pairs(query))
    if (percent_decode_query(k) == name)
      out.push_back(percent_decode_query(v));
  return out;
}

namespace {

/// "<digits><unit>" with the unit's seconds from `unit_seconds` (0: not a
/// unit); a missing unit counts as `bare` seconds (0: required).
std::optional<int64_t> parse_duration(std::string_view text,
                                      int64_t (*unit_seconds)(char),
                                      int64_t bare) {
  if (text.empty() || text.size() > 12)
    return std::nullopt;
  int64_t unit = bare;
  auto digits = text;
  if (text.back() < '0' || text.back() > '9') {
    unit = unit_seconds(text.back());
    digits.remove_suffix(1);
  }
  int64_t n = 0;
  auto res = std::from_chars(digits.data(), digits.data() + digits.size(), n);
  if (unit == 0 || digits.empty() || res.ec != std::errc{}
      || res.ptr != digits.data() + digits.size() || n <= 0)
    return std::nullopt;
  return n * unit;
}

int64_t resolution_unit(char c) {
  switch (c) {
    case 's': return 1;
    case 'm': return 60;
    case 'h': return 3600;
    case 'd': return 86400;
    default: return 0;
  }
}

int64_t period_unit(char c) {
  return c == 'w' ? 7 * 86400 : resolution_unit(c);
}

} // namespace

std::optional<int64_t> parse_resolution(std::string_view text) {
  return parse_duration(text, resolution_unit, 0);
}

std::optional<int64_t> parse_stats_period(std::string_view text) {
  return parse_duration(text, period_unit, 1);
}

caf::expected<stats_range>
parse_stats_range(std::string_view query,
                  const std::vector<tsdb_rollup>& rollups, double now) {
  std::optional<int64_t> rollup;
  if (auto r = query_value(query, "resolution"); r && !r->empty()) {
    rollup = parse_resolution(*r);
    bool known = false;
    for (const auto& x : rollups)
      known = known || (rollup && x.seconds == *rollup);
    if (!known) {
      std::string choices;
      for (const auto& x : rollups)
        choices += (choices.empty() ? "" : ", ") + std::to_string(x.seconds)
                   + "s";
      return bad("Invalid resolution: expected one of tsdb.rollups ("
                 + choices + "), as 10s, 1h or 1d");
    }
  }
  double end = now;
  if (auto u = query_value(query, "until"); u && !u->empty()) {
    auto x = parse_timestamp(*u);
    if (!x)
      return bad("until must be a numeric timestamp.");
    end = *x;
  }
  // Sentry's default: a day back from `until`, less a second.
  double start = end - 86399;
  if (auto s = query_value(query, "since"); s && !s->empty()) {
    auto x = parse_timestamp(*s);
    if (!x)
      return bad("since must be a numeric timestamp");
    start = *x;
    if (start > end)
      return bad("start must be before or equal to end");
  }
  if (start < 0)
    start = 0;
  stats_range out;
  // Sentry walks back from `until` in whole rollups while the point is not
  // before `since`: with whole seconds that is `until`'s second, and a
  // `since` one second later when its fraction is past `until`'s.
  double end_s = std::floor(end);
  double start_s = std::floor(start);
  out.end = static_cast<int64_t>(end_s);
  out.start = static_cast<int64_t>(start_s)
              + ((start - start_s) > (end - end_s) ? 1 : 0);
  if (rollup) {
    out.rollup = *rollup;
  } else {
    // get_optimal_rollup on the range as given, fractions and all.
    out.rollup = rollups.back().seconds;
    for (const auto& x : rollups)
      if (static_cast<double>(x.seconds * x.samples) >= end - start) {
        out.rollup = x.seconds;
        break;
      }
  }
  auto buckets = (out.end - out.start) / out.rollup + 1;
  if (buckets > max_stats_buckets)
    return bad("the range holds " + std::to_string(buckets)
               + " buckets of " + std::to_string(out.rollup)
               + " s, more than " + std::to_string(max_stats_buckets)
               + ": narrow since/until or choose a coarser resolution");
  return out;
}

} // namespace vigil
