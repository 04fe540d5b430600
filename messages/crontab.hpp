#pragma once

#include <bitset>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <caf/expected.hpp>

namespace vigil {

/// A parsed crontab expression, `minute hour day-of-month month day-of-week`,
/// evaluated in UTC at whole minutes.
///
/// Each field is `*`, a number, a range `a-b`, a step `*/n` or `a-b/n`, or a
/// comma-separated list of those. Months take `jan`..`dec` and weekdays
/// `sun`..`sat` (any case) wherever a number fits; weekday 0 and 7 are both
/// Sunday. The macros `@yearly` (`@annually`), `@monthly`, `@weekly`,
/// `@daily` (`@midnight`) and `@hourly` stand for their usual expressions.
///
/// Days follow the standard cron rule: when both day-of-month and
/// day-of-week are restricted (written as anything but a bare `*`), a day
/// matches if either field matches; otherwise both must.
struct crontab {
  std::bitset<60> minutes;
  std::bitset<24> hours;
  /// Days of the month 1..31 (bit 0 unused).
  std::bitset<32> days;
  /// Months 1..12 (bit 0 unused).
  std::bitset<13> months;
  /// Days of the week, 0 = Sunday .. 6 = Saturday.
  std::bitset<7> weekdays;
  /// The day-of-month field is not a bare `*`.
  bool days_restricted = false;
  /// The day-of-week field is not a bare `*`.
  bool weekdays_restricted = false;
  /// The expression as given, fields separated by single spaces.
  std::string text;
};

/// Parses a crontab expression. Fails with errc::malformed and a reason
/// that names the field and what is wrong with it, e.g.
/// "hour field '25': 25 is out of range 0-23". Does not check that the
/// expression ever fires (see `crontab_next`).
caf::expected<crontab> parse_crontab(std::string_view text);

/// Whether the whole day (UTC) `year-month-day` matches the day-of-month,
/// month and day-of-week fields.
bool crontab_matches_day(const crontab& c, int year, unsigned month,
                         unsigned day);

/// The first minute, in Unix milliseconds, strictly after `after_ms` that
/// `c` matches; nullopt if none comes within the next 30 years (e.g.
/// "0 0 30 2 *", which never fires).
std::optional<int64_t> crontab_next(const crontab& c, int64_t after_ms);

/// The last minute, in Unix milliseconds, at or before `at_ms` that `c`
/// matches; nullopt if none within the previous 30 years.
std::optional<int64_t> crontab_prev(const crontab& c, int64_t at_ms);

/// Formats Unix milliseconds as UTC ISO 8601, seconds resolution unless
/// there is a fraction: "2024-02-29T03:00:00Z", "2024-02-29T03:00:00.250Z".
std::string format_utc_ms(int64_t unix_ms);

} // namespace vigil
