// Crontab expressions: parsing (and the reasons given for bad ones) and the
// next/previous fire times, checked against hand-picked dates and against a
// minute-by-minute scan.

#include <catch2/catch.hpp>

#include <random>
#include <string>

#include "messages/clock.hpp"
#include "messages/crontab.hpp"
#include "messages/errors.hpp"

using namespace vigil;

namespace {

// "2024-02-29T03:00:00Z" -> Unix milliseconds.
int64_t at(const std::string& iso) {
  auto us = parse_iso8601(iso);
  REQUIRE(us);
  return *us / 1000;
}

crontab cron(const std::string& text) {
  auto c = parse_crontab(text);
  INFO(text << ": " << (c ? "" : error_text(c.error())));
  REQUIRE(c);
  return *c;
}

std::string next_of(const std::string& expr, const std::string& after) {
  auto t = crontab_next(cron(expr), at(after));
  return t ? format_utc_ms(*t) : "never";
}

std::string prev_of(const std::string& expr, const std::string& at_time) {
  auto t = crontab_prev(cron(expr), at(at_time));
  return t ? format_utc_ms(*t) : "never";
}

std::string parse_error(const std::string& text) {
  auto c = parse_crontab(text);
  INFO(text);
  REQUIRE(!c);
  CHECK(c.error() == errc::malformed);
  return error_text(c.error());
}

template <size_t N>
std::string bits(const std::bitset<N>& b) {
  std::string out;
  for (size_t i = 0; i < N; ++i)
    if (b.test(i))
      out += (out.empty() ? "" : ",") + std::to_string(i);
  return out;
}

// Does minute `t_ms` match, judged field by field.
bool matches(const crontab& c, int64_t t_ms) {
  auto iso = format_utc_ms(t_ms); // YYYY-MM-DDTHH:MM:SSZ
  auto y = std::stoi(iso.substr(0, 4));
  auto mo = static_cast<unsigned>(std::stoi(iso.substr(5, 2)));
  auto d = static_cast<unsigned>(std::stoi(iso.substr(8, 2)));
  auto h = static_cast<size_t>(std::stoi(iso.substr(11, 2)));
  auto mi = static_cast<size_t>(std::stoi(iso.substr(14, 2)));
  return crontab_matches_day(c, y, mo, d) && c.hours.test(h)
         && c.minutes.test(mi);
}

} // namespace

TEST_CASE("crontab: valid expressions", "[crontab]") {
  auto all = cron("* * * * *");
  CHECK(all.minutes.all());
  CHECK(all.hours.all());
  CHECK(all.days.count() == 31);
  CHECK(!all.days.test(0));
  CHECK(all.months.count() == 12);
  CHECK(all.weekdays.all());
  CHECK(!all.days_restricted);
  CHECK(!all.weekdays_restricted);

  auto c = cron("*/15 0-6/2 1,15 jan-mar,DEC Mon-Fri");
  CHECK(bits(c.minutes) == "0,15,30,45");
  CHECK(bits(c.hours) == "0,2,4,6");
  CHECK(bits(c.days) == "1,15");
  CHECK(bits(c.months) == "1,2,3,12");
  CHECK(bits(c.weekdays) == "1,2,3,4,5");
  CHECK(c.days_restricted);
  CHECK(c.weekdays_restricted);
  CHECK(c.text == "*/15 0-6/2 1,15 jan-mar,DEC Mon-Fri");

  CHECK(bits(cron("5-59/20 * * * *").minutes) == "5,25,45");
  CHECK(bits(cron("0,30,59 * * * *").minutes) == "0,30,59");
  CHECK(bits(cron("* * * * 7").weekdays) == "0");
  CHECK(bits(cron("* * * * 0").weekdays) == "0");
  CHECK(bits(cron("* * * * 5-7").weekdays) == "0,5,6");
  CHECK(bits(cron("* * * * fri-sun").weekdays) == "0,5,6");
  CHECK(bits(cron("* * * * sun-sat").weekdays) == "0,1,2,3,4,5,6");
  CHECK(bits(cron("* * * * 0-7").weekdays) == "0,1,2,3,4,5,6");
  CHECK(bits(cron("* * * * */2").weekdays) == "0,2,4,6");
  CHECK(bits(cron("* * * JAN,jUl,Dec *").months) == "1,7,12");
  CHECK(bits(cron("* * * * SAT,sun").weekdays) == "0,6");
  // Spaces and tabs between fields are all the same.
  CHECK(cron("  0\t3  * *   *  ").text == "0 3 * * *");
  // */n counts as restricted for the day rule (a bare * does not).
  CHECK(cron("* * */2 * *").days_restricted);

  CHECK(bits(cron("@hourly").minutes) == "0");
  CHECK(cron("@hourly").hours.all());
  CHECK(cron("@daily").text == "@daily");
  CHECK(bits(cron("@midnight").hours) == "0");
  CHECK(bits(cron("@weekly").weekdays) == "0");
  CHECK(bits(cron("@monthly").days) == "1");
  CHECK(bits(cron("@yearly").months) == "1");
  CHECK(bits(cron("@ANNUALLY").days) == "1");
}

TEST_CASE("crontab: invalid expressions say what is wrong", "[crontab]") {
  using Catch::Matchers::Contains;
  CHECK_THAT(parse_error(""), Contains("empty crontab expression"));
  CHECK_THAT(parse_error("   "), Contains("empty crontab expression"));
  CHECK_THAT(parse_error("* * * *"),
             Contains("expected 5 fields (minute hour day-of-month month "
                      "day-of-week), got 4"));
  CHECK_THAT(parse_error("* * * * * *"), Contains("got 6"));
  CHECK(parse_error("61 * * * *")
        == "minute field '61': 61 is out of range 0-59");
  CHECK(parse_error("* 24 * * *") == "hour field '24': 24 is out of range 0-23");
  CHECK(parse_error("* * 0 * *")
        == "day-of-month field '0': 0 is out of range 1-31");
  CHECK(parse_error("* * 32 * *")
        == "day-of-month field '32': 32 is out of range 1-31");
  CHECK(parse_error("* * * 13 *") == "month field '13': 13 is out of range 1-12");
  CHECK(parse_error("* * * 0 *") == "month field '0': 0 is out of range 1-12");
  CHECK(parse_error("* * * * 8")
        == "day-of-week field '8': 8 is out of range 0-7");
  CHECK(parse_error("-1 * * * *")
        == "minute field '-1': '-1' is out of range 0-59");
  CHECK(parse_error("* * * foo *")
        == "month field 'foo': 'foo' is not a number or a month name "
           "(jan..dec)");
  CHECK(parse_error("* * * * monday")
        == "day-of-week field 'monday': 'monday' is not a number or a "
           "weekday name (sun..sat)");
  CHECK(parse_error("x * * * *") == "minute field 'x': 'x' is not a number");
  // Names belong to their own field only.
  CHECK_THAT(parse_error("* * * mon *"), Contains("'mon' is not a number"));
  CHECK_THAT(parse_error("* * * * jan"), Contains("'jan' is not a number"));
  CHECK_THAT(parse_error("*/0 * * * *"),
             Contains("step '0' must be at least 1"));
  CHECK_THAT(parse_error("*/x * * * *"),
             Contains("step 'x' is not a positive number"));
  CHECK_THAT(parse_error("*/60 * * * *"),
             Contains("step 60 is larger than the range 0-59"));
  CHECK_THAT(parse_error("* */24 * * *"),
             Contains("step 24 is larger than the range 0-23"));
  CHECK_THAT(parse_error("5/10 * * * *"),
             Contains("a step needs '*' or a range before the '/', e.g. "
                      "'*/10' or '5-59/10'"));
  CHECK_THAT(parse_error("*/5/2 * * * *"), Contains("more than one '/'"));
  CHECK(parse_error("10-5 * * * *")
        == "minute field '10-5': range '10-5' is backwards (10 > 5)");
  CHECK_THAT(parse_error("* * * * sat-mon"), Contains("is backwards"));
  CHECK_THAT(parse_error("1,,2 * * * *"), Contains("empty item in the list"));
  CHECK_THAT(parse_error("1, * * * *"), Contains("empty item in the list"));
  CHECK_THAT(parse_error("1- * * * *"), Contains("a value is missing"));
  CHECK_THAT(parse_error("1-2-3 * * * *"), Contains("'2-3' is not a number"));
  CHECK_THAT(parse_error("99999999999999999999 * * * *"),
             Contains("is out of range 0-59"));
  CHECK_THAT(parse_error("@often"), Contains("unknown macro '@often'"));
  CHECK_THAT(parse_error("@daily *"), Contains("expected 5 fields"));
}

TEST_CASE("crontab: next fire times", "[crontab]") {
  SECTION("every minute, strictly after") {
    CHECK(next_of("* * * * *", "2024-05-01T12:00:30Z") == "2024-05-01T12:01:00Z");
    CHECK(next_of("* * * * *", "2024-05-01T12:01:00Z") == "2024-05-01T12:02:00Z");
    CHECK(next_of("* * * * *", "2024-05-01T12:00:59.999Z")
          == "2024-05-01T12:01:00Z");
  }
  SECTION("steps and lists") {
    CHECK(next_of("*/15 * * * *", "2024-05-01T10:07:00Z") == "2024-05-01T10:15:00Z");
    CHECK(next_of("*/15 * * * *", "2024-05-01T10:45:00Z") == "2024-05-01T11:00:00Z");
    CHECK(next_of("0-30/10 * * * *", "2024-05-01T10:31:00Z")
          == "2024-05-01T11:00:00Z");
    CHECK(next_of("5-59/20 * * * *", "2024-05-01T10:26:00Z")
          == "2024-05-01T10:45:00Z");
    CHECK(next_of("0 */6 * * *", "2024-01-01T19:00:00Z") == "2024-01-02T00:00:00Z");
    CHECK(next_of("15,45 9,17 * * *", "2024-01-01T09:45:00Z")
          == "2024-01-01T17:15:00Z");
  }
  SECTION("day, month and year ends") {
    CHECK(next_of("59 23 * * *", "2023-12-31T23:59:00Z") == "2024-01-01T23:59:00Z");
    CHECK(next_of("0 0 1 1 *", "2024-06-01T00:00:00Z") == "2025-01-01T00:00:00Z");
    CHECK(next_of("0 0 31 * *", "2024-01-31T00:00:00Z") == "2024-03-31T00:00:00Z");
    CHECK(next_of("0 0 31 * *", "2024-04-01T00:00:00Z") == "2024-05-31T00:00:00Z");
    CHECK(next_of("0 0 30 * *", "2024-01-30T12:00:00Z") == "2024-03-30T00:00:00Z");
    CHECK(next_of("0 12 1 * *", "2024-12-15T00:00:00Z") == "2025-01-01T12:00:00Z");
    CHECK(next_of("30 6 * feb *", "2023-02-28T07:00:00Z") == "2024-02-01T06:30:00Z");
  }
  SECTION("leap years") {
    CHECK(next_of("0 0 29 2 *", "2024-03-01T00:00:00Z") == "2028-02-29T00:00:00Z");
    CHECK(next_of("0 0 29 feb *", "2023-01-01T00:00:00Z") == "2024-02-29T00:00:00Z");
    // 2100 is not a leap year (divisible by 100, not by 400); 2000 was.
    CHECK(next_of("0 0 29 2 *", "2097-01-01T00:00:00Z") == "2104-02-29T00:00:00Z");
    CHECK(next_of("0 0 29 2 *", "1999-01-01T00:00:00Z") == "2000-02-29T00:00:00Z");
    CHECK(next_of("0 0 * 2 *", "2024-02-28T01:00:00Z") == "2024-02-29T00:00:00Z");
    CHECK(next_of("0 0 * 2 *", "2023-02-28T01:00:00Z") == "2024-02-01T00:00:00Z");
  }
  SECTION("day-of-month OR day-of-week when both are restricted") {
    // October 2024: Fridays 4, 11, 18, 25; the 13th is a Sunday.
    CHECK(next_of("0 0 13 * fri", "2024-10-01T00:00:00Z") == "2024-10-04T00:00:00Z");
    CHECK(next_of("0 0 13 * fri", "2024-10-11T00:00:00Z") == "2024-10-13T00:00:00Z");
    CHECK(next_of("0 0 13 * fri", "2024-10-13T00:00:00Z") == "2024-10-18T00:00:00Z");
    // Only day-of-month restricted: the 13th only.
    CHECK(next_of("0 0 13 * *", "2024-10-01T00:00:00Z") == "2024-10-13T00:00:00Z");
    // Only day-of-week restricted: Mondays only (2024-10-07 is a Monday).
    CHECK(next_of("0 0 * * 1", "2024-10-01T00:00:00Z") == "2024-10-07T00:00:00Z");
    CHECK(next_of("0 0 * * mon", "2024-10-07T00:00:00Z") == "2024-10-14T00:00:00Z");
    // 7 is Sunday too.
    CHECK(next_of("0 0 * * 7", "2024-10-01T00:00:00Z") == "2024-10-06T00:00:00Z");
    CHECK(next_of("0 0 * * sun", "2024-10-01T00:00:00Z") == "2024-10-06T00:00:00Z");
    // Weekdays at 03:00: Friday -> Monday.
    CHECK(next_of("0 3 * * mon-fri", "2024-10-04T03:00:00Z")
          == "2024-10-07T03:00:00Z");
    // The OR rule also with a month restriction: Feb 1 or any Monday in Feb.
    CHECK(next_of("0 0 1 2 1", "2024-01-15T00:00:00Z") == "2024-02-01T00:00:00Z");
    CHECK(next_of("0 0 1 2 1", "2024-02-01T00:00:00Z") == "2024-02-05T00:00:00Z");
    CHECK(next_of("0 0 1 2 1", "2024-02-26T00:00:00Z") == "2025-02-01T00:00:00Z");
  }
  SECTION("names") {
    CHECK(next_of("0 9 * jan,jul sun", "2024-02-01T00:00:00Z")
          == "2024-07-07T09:00:00Z");
    CHECK(next_of("0 9 * JUL SUN", "2024-07-07T09:00:00Z")
          == "2024-07-14T09:00:00Z");
  }
  SECTION("never") {
    CHECK(next_of("0 0 30 2 *", "2024-01-01T00:00:00Z") == "never");
    CHECK(next_of("0 0 31 4,6,9,11 *", "2024-01-01T00:00:00Z") == "never");
    // ...but with a weekday as well the OR rule makes it fire.
    CHECK(next_of("0 0 30 2 mon", "2024-01-01T00:00:00Z") == "2024-02-05T00:00:00Z");
  }
}

TEST_CASE("crontab: previous fire times", "[crontab]") {
  CHECK(prev_of("0 3 * * *", "2024-01-02T02:59:00Z") == "2024-01-01T03:00:00Z");
  CHECK(prev_of("0 3 * * *", "2024-01-02T03:00:00Z") == "2024-01-02T03:00:00Z");
  CHECK(prev_of("0 3 * * *", "2024-01-02T03:00:59Z") == "2024-01-02T03:00:00Z");
  CHECK(prev_of("*/5 * * * *", "2024-01-01T00:04:00Z") == "2024-01-01T00:00:00Z");
  CHECK(prev_of("*/5 * * * *", "2024-01-01T00:00:00Z") == "2024-01-01T00:00:00Z");
  CHECK(prev_of("*/5 * * * *", "2023-12-31T23:59:59Z") == "2023-12-31T23:55:00Z");
  CHECK(prev_of("0 0 29 2 *", "2025-01-01T00:00:00Z") == "2024-02-29T00:00:00Z");
  CHECK(prev_of("0 0 31 * *", "2024-05-30T00:00:00Z") == "2024-03-31T00:00:00Z");
  CHECK(prev_of("0 0 13 * fri", "2024-10-17T00:00:00Z") == "2024-10-13T00:00:00Z");
  CHECK(prev_of("30 12 * * mon-fri", "2024-10-06T23:00:00Z")
        == "2024-10-04T12:30:00Z");
  CHECK(prev_of("0 0 30 2 *", "2024-01-01T00:00:00Z") == "never");
}

TEST_CASE("crontab: next and previous agree with a minute-by-minute scan",
          "[crontab]") {
  const char* exprs[] = {
    "* * * * *",          "*/7 * * * *",       "13 */5 * * *",
    "0 0 13 * fri",       "0 0 * * 0",         "45 23 31 * *",
    "0 12 29 2 *",        "5-20/5 6-8 * * 1-5", "0 0 1,15 * sat,sun",
    "0 0 * jan,mar,dec *", "59 23 28-31 * *",  "30 2 */2 * *",
  };
  std::mt19937_64 rng{12345};
  // 1990..2090, at any millisecond.
  std::uniform_int_distribution<int64_t> when{631152000000, 3786912000000};
  constexpr int64_t window = 3 * 24 * 60; // minutes scanned
  for (auto* expr : exprs) {
    auto c = cron(expr);
    for (int i = 0; i < 25; ++i) {
      auto t = when(rng);
      INFO(expr << " around " << format_utc_ms(t));
      // Forward.
      auto next = crontab_next(c, t);
      auto minute = (t / 60000 + 1) * 60000;
      std::optional<int64_t> scanned;
      for (int64_t k = 0; k < window && !scanned; ++k)
        if (matches(c, minute + k * 60000))
          scanned = minute + k * 60000;
      if (scanned) {
        REQUIRE(next);
        CHECK(format_utc_ms(*next) == format_utc_ms(*scanned));
      } else if (next) {
        CHECK(*next >= minute + window * 60000);
        CHECK(matches(c, *next));
      }
      // Backward.
      auto prev = crontab_prev(c, t);
      auto top = t / 60000 * 60000;
      std::optional<int64_t> scanned_back;
      for (int64_t k = 0; k < window && !scanned_back; ++k)
        if (matches(c, top - k * 60000))
          scanned_back = top - k * 60000;
      if (scanned_back) {
        REQUIRE(prev);
        CHECK(format_utc_ms(*prev) == format_utc_ms(*scanned_back));
      } else if (prev) {
        CHECK(*prev <= top - window * 60000);
        CHECK(matches(c, *prev));
      }
    }
  }
}

TEST_CASE("crontab: UTC formatting", "[crontab]") {
  CHECK(format_utc_ms(0) == "1970-01-01T00:00:00Z");
  CHECK(format_utc_ms(1709175600000) == "2024-02-29T03:00:00Z");
  CHECK(format_utc_ms(1709175600250) == "2024-02-29T03:00:00.250Z");
  CHECK(format_utc_ms(-1000) == "1969-12-31T23:59:59Z");
  CHECK(at("2024-02-29T03:00:00Z") == 1709175600000);
}
