// The pure parts of the stats endpoints: StatsMixin's since/until/
// resolution (defaults, Sentry's walk back from a fractional until, the
// errors), and tsdb.rollups as the configuration and the TSDB read it.

#include <catch2/catch.hpp>

#include <map>
#include <string>

#include "actors/tsdb.hpp"
#include "config/config.hpp"
#include "messages/errors.hpp"
#include "web/stats_query.hpp"

using namespace vigil;

namespace {

const auto rollups = default_tsdb_rollups();

stats_range parse_ok(const std::string& q, double now) {
  auto r = parse_stats_range(q, rollups, now);
  INFO(q);
  REQUIRE(r);
  return *r;
}

std::string parse_error(const std::string& q, double now = 1e9) {
  auto r = parse_stats_range(q, rollups, now);
  INFO(q);
  REQUIRE_FALSE(r);
  return error_text(r.error());
}

} // namespace

TEST_CASE("stats ranges default as Sentry's StatsMixin", "[stats]") {
  // No arguments: until = now, since = a day less a second before, the
  // optimal rollup of 86399 s is the hour.
  auto r = parse_ok("", 1733220000.75);
  CHECK(r.end == 1733220000);
  CHECK(r.start == 1733220000 - 86399);
  CHECK(r.rollup == 3600);
  CHECK(tsdb_series(r.start, r.end, r.rollup).size() == 24);
  // Optimal rollups: an hour at 10 s, past it hours, past a week days.
  CHECK(parse_ok("since=1000&until=4600", 5000).rollup == 10);
  CHECK(parse_ok("since=1000&until=4601", 5000).rollup == 3600);
  CHECK(parse_ok("since=0&until=604800", 1e9).rollup == 3600);
  CHECK(parse_ok("since=0&until=604801", 1e9).rollup == 86400);
  CHECK(parse_ok("since=0&until=99999999", 1e9).rollup == 86400);
  // The last value of a repeated argument wins (QueryDict.get).
  CHECK(parse_ok("resolution=10s&resolution=1d&since=0&until=10", 1e9).rollup
        == 86400);
  // Empty values are absent ones.
  CHECK(parse_ok("since=&until=&resolution=", 2e5).end == 200000);
}

TEST_CASE("stats ranges walk back from until as Sentry does", "[stats]") {
  // Points until - k * rollup that are not before since: a since whose
  // fraction is past until's loses its own second.
  auto a = parse_ok("since=100.5&until=120.2&resolution=10s", 1e9);
  CHECK(tsdb_series(a.start, a.end, a.rollup)
        == std::vector<int64_t>{110, 120});
  auto b = parse_ok("since=100.2&until=120.5&resolution=10s", 1e9);
  CHECK(tsdb_series(b.start, b.end, b.rollup)
        == std::vector<int64_t>{100, 110, 120});
  auto c = parse_ok("since=100&until=120&resolution=10s", 1e9);
  CHECK(tsdb_series(c.start, c.end, c.rollup).size() == 3);
  // Numbers as Python's float() reads them.
  CHECK(parse_ok("since=1e2&until=+1.2e2&resolution=10s", 1e9).start == 100);
}

TEST_CASE("stats ranges refuse bad input with Sentry's details",
          "[stats]") {
  CHECK_THAT(parse_error("resolution=30s"),
             Catch::StartsWith("Invalid resolution"));
  CHECK_THAT(parse_error("resolution=1"), Catch::StartsWith("Invalid resolution"));
  CHECK_THAT(parse_error("resolution=0s"), Catch::StartsWith("Invalid resolution"));
  CHECK_THAT(parse_error("resolution=1.5h"),
             Catch::StartsWith("Invalid resolution"));
  CHECK(parse_error("until=soon") == "until must be a numeric timestamp.");
  CHECK(parse_error("until=inf") == "until must be a numeric timestamp.");
  CHECK(parse_error("since=0x10") == "since must be a numeric timestamp");
  CHECK(parse_error("since=20&until=10")
        == "start must be before or equal to end");
  CHECK_THAT(parse_error("since=0&until=1000000&resolution=10s"),
             Catch::Contains("more than 100000"));
  CHECK(parse_resolution("10s") == 10);
  CHECK(parse_resolution("5m") == 300);
  CHECK(parse_resolution("1h") == 3600);
  CHECK(parse_resolution("1d") == 86400);
  CHECK_FALSE(parse_resolution("d"));
  CHECK_FALSE(parse_resolution("1w"));
  // A custom rollup list is what resolution may name.
  auto custom = parse_stats_range("resolution=1m", {{60, 100}}, 1e6);
  REQUIRE(custom);
  CHECK(custom->rollup == 60);
}

TEST_CASE("tsdb.rollups is checked with the key and read by the TSDB",
          "[stats][config]") {
  auto problem = [](const std::string& yaml) {
    auto ps = config::validate(yaml, {});
    INFO(yaml);
    REQUIRE(ps.size() == 1);
    return ps.front().message;
  };
  CHECK(config::validate("tsdb.rollups: [[60, 60], [3600, 48]]\n", {})
          .empty());
  CHECK(problem("tsdb.rollups: [[3600, 48], [60, 60]]\n")
        == "tsdb.rollups: item 2: rollups go finest first: 60 s after "
           "3600 s");
  CHECK(problem("tsdb.rollups: [[10, 0]]\n")
        == "tsdb.rollups: item 1: samples: expected an integer in [1, "
           "100000]");
  CHECK(problem("tsdb.rollups: [[ten, 360]]\n")
        == "tsdb.rollups: item 1: seconds: expected an integer in [1, "
           "31536000]");
  CHECK(problem("tsdb.rollups: [[10, 360, 1]]\n")
        == "tsdb.rollups: item 1: expected [seconds, samples]");
  CHECK(problem("tsdb.rollups: 10\n")
        == "tsdb.rollups: expected a list of [seconds, samples], finest "
           "first, e.g. [[10, 360], [3600, 168], [86400, 90]]");
  CHECK_THAT(problem("tsdb.rollups: [[\"10\", 360]]\n"),
             Catch::Contains("item 1: seconds"));
  // The default is Sentry's, and the TSDB's options carry what is set.
  auto defaults = make_tsdb_options(config::defaults());
  REQUIRE(defaults);
  REQUIRE(defaults->rollups.size() == 3);
  CHECK(defaults->rollups[1].seconds == 3600);
  CHECK(defaults->rollups[1].samples == 168);
  auto cfg = config::from_yaml("tsdb:\n  rollups: [[60, 120], [86400, 30]]\n",
                               {});
  REQUIRE(cfg);
  auto opts = make_tsdb_options(*cfg);
  REQUIRE(opts);
  REQUIRE(opts->rollups.size() == 2);
  CHECK(opts->rollups[0].seconds == 60);
  CHECK(opts->rollups[0].samples == 120);
  CHECK(opts->rollups[1].samples == 30);
  // As an environment override too.
  auto env = config::from_yaml("", {{"VIGIL_TSDB_ROLLUPS", "[[30, 10]]"}});
  REQUIRE(env);
  auto eopts = make_tsdb_options(*env);
  REQUIRE(eopts);
  REQUIRE(eopts->rollups.size() == 1);
  CHECK(eopts->rollups[0].seconds == 30);
}
