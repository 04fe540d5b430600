#include "messages/crontab.hpp"

#include <array>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <vector>

#include "messages/errors.hpp"

namespace vigil {

namespace {

constexpr int64_t minutes_per_day = 1440;
constexpr int64_t search_minutes = 30 * 366 * minutes_per_day;

constexpr std::array<std::string_view, 12> month_names
  = {"jan", "feb", "mar", "apr", "may", "jun",
     "jul", "aug", "sep", "oct", "nov", "dec"};
constexpr std::array<std::string_view, 7> weekday_names
  = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

enum field_index { minute_field, hour_field, dom_field, month_field, dow_field };

struct field_spec {
  std::string_view name;
  int min;
  /// The largest value written; for day-of-week 7 (Sunday again).
  int max;
  /// The largest value `*` stands for (day-of-week: 6).
  int star_max;
  /// Names for the values from `min` on, or empty.
  const std::string_view* names;
  size_t name_count;
  std::string_view names_hint;
};

constexpr std::array<field_spec, 5> fields = {{
  {"minute", 0, 59, 59, nullptr, 0, ""},
  {"hour", 0, 23, 23, nullptr, 0, ""},
  {"day-of-month", 1, 31, 31, nullptr, 0, ""},
  {"month", 1, 12, 12, month_names.data(), month_names.size(),
   " or a month name (jan..dec)"},
  {"day-of-week", 0, 7, 6, weekday_names.data(), weekday_names.size(),
   " or a weekday name (sun..sat)"},
}};

int64_t floor_div(int64_t a, int64_t b) {
  auto q = a / b;
  if (a % b != 0 && ((a < 0) != (b < 0)))
    --q;
  return q;
}

struct civil_day {
  int year;
  unsigned month;
  unsigned day;
  unsigned weekday; // 0 = Sunday
};

civil_day civil_from_days(int64_t days) {
  using namespace std::chrono;
  sys_days sd{std::chrono::days{days}};
  year_month_day ymd{sd};
  return {static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
          static_cast<unsigned>(ymd.day()), weekday{sd}.c_encoding()};
}

int64_t days_from_civil(int y, unsigned m, unsigned d) {
  using namespace std::chrono;
  return sys_days{year{y} / month{m} / day{d}}.time_since_epoch().count();
}

char lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

bool all_digits(std::string_view s) {
  if (s.empty())
    return false;
  for (char c : s)
    if (c < '0' || c > '9')
      return false;
  return true;
}

std::string range_text(const field_spec& f) {
  return std::to_string(f.min) + "-" + std::to_string(f.max);
}

// Parses one value (a number or a name) of field `f`; "" on success.
std::string parse_one(const field_spec& f, std::string_view text, int& out,
                      bool& is_name) {
  is_name = false;
  if (text.empty())
    return "a value is missing";
  if (all_digits(text)) {
    unsigned long long x = 0;
    auto res = std::from_chars(text.data(), text.data() + text.size(), x);
    if (res.ec != std::errc{} || x > static_cast<unsigned long long>(f.max)
        || static_cast<int>(x) < f.min)
      return std::string{text} + " is out of range " + range_text(f);
    out = static_cast<int>(x);
    return {};
  }
  if (f.names != nullptr && text.size() == 3) {
    std::string low;
    for (char c : text)
      low += lower(c);
    for (size_t i = 0; i < f.name_count; ++i)
      if (f.names[i] == low) {
        out = f.min + static_cast<int>(i);
        is_name = true;
        return {};
      }
  }
  if (text.front() == '-')
    return "'" + std::string{text} + "' is out of range " + range_text(f);
  return "'" + std::string{text} + "' is not a number" + std::string{f.names_hint};
}

// Parses one comma-separated item into `bits`; "" on success.
template <size_t N>
std::string parse_item(const field_spec& f, bool weekday,
                       std::string_view item, std::bitset<N>& bits) {
  if (item.empty())
    return "empty item in the list";
  auto slash = item.find('/');
  auto range = item.substr(0, slash);
  int step = 1;
  if (slash != std::string_view::npos) {
    auto step_text = item.substr(slash + 1);
    if (step_text.find('/') != std::string_view::npos)
      return "'" + std::string{item} + "' has more than one '/'";
    if (!all_digits(step_text))
      return "step '" + std::string{step_text}
             + "' is not a positive number";
    unsigned long long x = 0;
    auto res = std::from_chars(step_text.data(),
                               step_text.data() + step_text.size(), x);
    if (res.ec != std::errc{} || x == 0)
      return "step '" + std::string{step_text} + "' must be at least 1";
    if (x > static_cast<unsigned long long>(f.star_max - f.min))
      return "step " + std::string{step_text} + " is larger than the range "
             + std::to_string(f.min) + "-" + std::to_string(f.star_max)
             + " of the field (cron cannot express it)";
    step = static_cast<int>(x);
  }
  int lo = 0;
  int hi = 0;
  if (range == "*") {
    lo = f.min;
    hi = f.star_max;
  } else if (auto dash = range.find('-', 1); dash != std::string_view::npos) {
    bool lo_name = false;
    bool hi_name = false;
    if (auto err = parse_one(f, range.substr(0, dash), lo, lo_name);
        !err.empty())
      return err;
    if (auto err = parse_one(f, range.substr(dash + 1), hi, hi_name);
        !err.empty())
      return err;
    // "fri-sun" ends on Sunday, which is 7 as well as 0.
    if (weekday && hi_name && hi == 0 && lo > 0)
      hi = 7;
    if (lo > hi)
      return "range '" + std::string{range} + "' is backwards (" + std::to_string(lo)
             + " > " + std::to_string(hi) + ")";
  } else {
    bool is_name = false;
    if (auto err = parse_one(f, range, lo, is_name); !err.empty())
      return err;
    if (slash != std::string_view::npos)
      return "a step needs '*' or a range before the '/', e.g. '*/"
             + std::to_string(step) + "' or '" + std::to_string(lo) + "-"
             + std::to_string(f.star_max) + "/" + std::to_string(step) + "'";
    hi = lo;
  }
  for (int v = lo; v <= hi; v += step)
    bits.set(static_cast<size_t>(weekday ? v % 7 : v));
  return {};
}

template <size_t N>
caf::error parse_field(const field_spec& f, bool weekday, std::string_view text,
                       std::bitset<N>& bits) {
  size_t begin = 0;
  while (true) {
    auto comma = text.find(',', begin);
    auto item = text.substr(begin, comma == std::string_view::npos
                                     ? std::string_view::npos
                                     : comma - begin);
    if (auto err = parse_item(f, weekday, item, bits); !err.empty())
      return caf::make_error(errc::malformed,
                             std::string{f.name} + " field '"
                               + std::string{text} + "': " + err);
    if (comma == std::string_view::npos)
      break;
    begin = comma + 1;
  }
  return {};
}

std::string_view expand_macro(std::string_view text) {
  std::string low;
  for (char c : text)
    low += lower(c);
  if (low == "@yearly" || low == "@annually")
    return "0 0 1 1 *";
  if (low == "@monthly")
    return "0 0 1 * *";
  if (low == "@weekly")
    return "0 0 * * 0";
  if (low == "@daily" || low == "@midnight")
    return "0 0 * * *";
  if (low == "@hourly")
    return "0 * * * *";
  return {};
}

bool day_matches(const crontab& c, const civil_day& d) {
  if (!c.months.test(d.month))
    return false;
  bool dom = c.days.test(d.day);
  bool dow = c.weekdays.test(d.weekday);
  if (c.days_restricted && c.weekdays_restricted)
    return dom || dow;
  return dom && dow;
}

} // namespace

caf::expected<crontab> parse_crontab(std::string_view text) {
  std::vector<std::string_view> parts;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && (text[i] == ' ' || text[i] == '\t'))
      ++i;
    auto start = i;
    while (i < text.size() && text[i] != ' ' && text[i] != '\t')
      ++i;
    if (i > start)
      parts.push_back(text.substr(start, i - start));
  }
  if (parts.empty())
    return caf::make_error(errc::malformed, "empty crontab expression");
  if (parts.size() == 1 && parts[0].front() == '@') {
    auto expanded = expand_macro(parts[0]);
    if (expanded.empty())
      return caf::make_error(errc::malformed,
                             "unknown macro '" + std::string{parts[0]}
                               + "' (expected @yearly, @annually, @monthly, "
                                 "@weekly, @daily, @midnight or @hourly)");
    auto out = parse_crontab(expanded);
    if (out)
      out->text = std::string{parts[0]};
    return out;
  }
  if (parts.size() != 5)
    return caf::make_error(errc::malformed,
                           "expected 5 fields (minute hour day-of-month month "
                           "day-of-week), got "
                             + std::to_string(parts.size()));
  crontab out;
  if (auto err = parse_field(fields[minute_field], false, parts[0], out.minutes))
    return err;
  if (auto err = parse_field(fields[hour_field], false, parts[1], out.hours))
    return err;
  if (auto err = parse_field(fields[dom_field], false, parts[2], out.days))
    return err;
  if (auto err = parse_field(fields[month_field], false, parts[3], out.months))
    return err;
  if (auto err = parse_field(fields[dow_field], true, parts[4], out.weekdays))
    return err;
  out.days_restricted = parts[2] != "*";
  out.weekdays_restricted = parts[4] != "*";
  for (auto p : parts) {
    if (!out.text.empty())
      out.text += ' ';
    out.text += p;
  }
  return out;
}

bool crontab_matches_day(const crontab& c, int year, unsigned month,
                         unsigned day) {
  auto days = days_from_civil(year, month, day);
  return day_matches(c, civil_from_days(days));
}

std::optional<int64_t> crontab_next(const crontab& c, int64_t after_ms) {
  int64_t t = floor_div(after_ms, 60000) + 1;
  const int64_t limit = t + search_minutes;
  while (t < limit) {
    auto day = floor_div(t, minutes_per_day);
    auto mod = t - day * minutes_per_day;
    auto d = civil_from_days(day);
    if (!c.months.test(d.month)) {
      auto y = d.year;
      auto m = d.month + 1;
      if (m == 13) {
        m = 1;
        ++y;
      }
      t = days_from_civil(y, m, 1) * minutes_per_day;
      continue;
    }
    if (!day_matches(c, d)) {
      t = (day + 1) * minutes_per_day;
      continue;
    }
    auto h = mod / 60;
    if (!c.hours.test(static_cast<size_t>(h))) {
      t = day * minutes_per_day + (h + 1) * 60;
      continue;
    }
    auto mi = mod % 60;
    if (!c.minutes.test(static_cast<size_t>(mi))) {
      auto next = mi + 1;
      while (next < 60 && !c.minutes.test(static_cast<size_t>(next)))
        ++next;
      t = day * minutes_per_day + h * 60 + next; // next == 60: the next hour
      continue;
    }
    return t * 60000;
  }
  return std::nullopt;
}

std::optional<int64_t> crontab_prev(const crontab& c, int64_t at_ms) {
  int64_t t = floor_div(at_ms, 60000);
  const int64_t limit = t - search_minutes;
  while (t > limit) {
    auto day = floor_div(t, minutes_per_day);
    auto mod = t - day * minutes_per_day;
    auto d = civil_from_days(day);
    if (!c.months.test(d.month)) {
      t = days_from_civil(d.year, d.month, 1) * minutes_per_day - 1;
      continue;
    }
    if (!day_matches(c, d)) {
      t = day * minutes_per_day - 1;
      continue;
    }
    auto h = mod / 60;
    if (!c.hours.test(static_cast<size_t>(h))) {
      t = day * minutes_per_day + h * 60 - 1;
      continue;
    }
    auto mi = mod % 60;
    if (!c.minutes.test(static_cast<size_t>(mi))) {
      auto prev = mi - 1;
      while (prev >= 0 && !c.minutes.test(static_cast<size_t>(prev)))
        --prev;
      t = day * minutes_per_day + h * 60 + prev; // prev == -1: the hour before
      continue;
    }
    return t * 60000;
  }
  return std::nullopt;
}

std::string format_utc_ms(int64_t unix_ms) {
  auto secs = floor_div(unix_ms, 1000);
  auto ms = unix_ms - secs * 1000;
  auto day = floor_div(secs, 86400);
  auto sod = secs - day * 86400;
  auto d = civil_from_days(day);
  char buf[64];
  int n = std::snprintf(buf, sizeof(buf), "%04d-%02u-%02uT%02d:%02d:%02d",
                        d.year, d.month, d.day, static_cast<int>(sod / 3600),
                        static_cast<int>(sod / 60 % 60),
                        static_cast<int>(sod % 60));
  std::string out(buf, static_cast<size_t>(n > 0 ? n : 0));
  if (ms != 0) {
    std::snprintf(buf, sizeof(buf), ".%03d", static_cast<int>(ms));
    out += buf;
  }
  out += 'Z';
  return out;
}

} // namespace vigil
