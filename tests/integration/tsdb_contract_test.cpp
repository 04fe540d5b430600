// The TSDB's contract, run against every backend that keeps data (memory;
// redis once its backend lands): buckets per rollup, environments, expiry,
// distinct counts; and the dummy backend's zeros.

#include <catch2/catch.hpp>

#include <atomic>
#include <memory>
#include <string>

#include "actors/backends/tsdb.hpp"
#include "adapters/redis.hpp"
#include "messages/clock.hpp"
#include "messages/errors.hpp"
#include "tests/support/test_servers.hpp"

using namespace vigil;

namespace {

// Now, 5 s into a 10 s bucket. Redis expires keys by its own clock, so
// the cases count at the real time (a bucket written in the past would be
// gone at once).
int64_t base_time() {
  auto now = now_unix_us() / 1000000;
  return tsdb_bucket_start(now, 10) + 5;
}

struct fixture {
  std::shared_ptr<std::atomic<int64_t>> now =
    std::make_shared<std::atomic<int64_t>>(base_time());
  std::unique_ptr<tsdb_backend> tsdb;
  /// The redis backend's server (the expiry case reads EXPIRETIME).
  std::optional<redis_connection> redis;
};

std::vector<fixture> backends() {
  static std::atomic<int> counter{0};
  std::vector<fixture> out;
  fixture mem;
  tsdb_backend_options o;
  o.backend = "memory";
  o.url = "memory://tsdb-contract-" + std::to_string(++counter);
  o.clock = [now = mem.now] { return now->load(); };
  auto b = make_tsdb_backend(o);
  REQUIRE(b);
  mem.tsdb = std::move(*b);
  out.push_back(std::move(mem));
  if (auto url = vigil::testing::test_server_url("VIGIL_TEST_REDIS_URL");
      !url.empty()) {
    url = url.substr(0, url.rfind('/')) + "/43";
    auto ep = parse_redis_url(url);
    REQUIRE(ep);
    auto conn = redis_connection::connect(*ep, std::chrono::seconds{2});
    REQUIRE(conn);
    REQUIRE(conn->command({"FLUSHDB"}));
    fixture red;
    red.redis = std::move(*conn);
    tsdb_backend_options ro;
    ro.backend = "redis";
    ro.url = url;
    auto rb = make_tsdb_backend(ro);
    REQUIRE(rb);
    red.tsdb = std::move(*rb);
    out.push_back(std::move(red));
  }
  return out;
}

} // namespace

TEST_CASE("tsdb counts per bucket of every rollup, per environment",
          "[tsdb]") {
  for (auto& f : backends()) {
    INFO(f.tsdb->describe());
    auto& t = *f.tsdb;
    int64_t ts = *f.now; // 5 s into the 10 s bucket b
    int64_t b = ts - 5;
    REQUIRE_FALSE(t.incr_multi({
      {tsdb_model::group, tsdb_key::of(4), ts - 20, 1, std::nullopt},
      {tsdb_model::group, tsdb_key::of(4), ts, 2, 7},
      {tsdb_model::group, tsdb_key::of(4), ts - 3, 1, std::nullopt},
      {tsdb_model::group, tsdb_key::of(5), ts, 9, std::nullopt},
    }));
    auto r = t.get_range(tsdb_model::group, {tsdb_key::of(4), tsdb_key::of(5)},
                         {ts - 30, ts, 10, std::nullopt});
    REQUIRE(r);
    REQUIRE(r->size() == 2);
    CHECK((*r)[0] == std::vector<tsdb_point>{{b - 30, 0},
                                             {b - 20, 1},
                                             {b - 10, 0},
                                             {b, 3}});
    // Sentry walks back from the end in rollup steps: a start late in its
    // bucket (b - 21, in bucket b - 30) leaves that bucket out.
    auto late = t.get_range(tsdb_model::group, {tsdb_key::of(4)},
                            {ts - 16, ts, 10, std::nullopt});
    CHECK((*late)[0] == std::vector<tsdb_point>{{b - 10, 0}, {b, 3}});
    CHECK(tsdb_sums(*r) == std::vector<int64_t>{4, 9});
    // The environment's own series holds only what was counted for it.
    auto env = t.get_range(tsdb_model::group, {tsdb_key::of(4)},
                           {ts - 30, ts, 10, 7});
    CHECK(tsdb_sums(*env) == std::vector<int64_t>{2});
    // Coarser rollups hold the same counts.
    auto hours = t.get_range(tsdb_model::group, {tsdb_key::of(4)},
                             {ts - 3600, ts, 3600, std::nullopt});
    CHECK(tsdb_sums(*hours) == std::vector<int64_t>{4});
    auto days = t.get_range(tsdb_model::group, {tsdb_key::of(4)},
                            {ts - 20, ts, 86400, std::nullopt});
    CHECK(tsdb_sums(*days) == std::vector<int64_t>{4});
    // A rollup that is not configured is refused.
    CHECK_FALSE(t.get_range(tsdb_model::group, {tsdb_key::of(4)},
                            {ts - 60, ts, 60, std::nullopt}));
    // String keys (a release) count apart from integer ones.
    REQUIRE_FALSE(t.incr_multi(
      {{tsdb_model::release, tsdb_key::of(std::string{"1.0"}), ts, 5,
        std::nullopt}}));
    auto rel = t.get_range(tsdb_model::release,
                           {tsdb_key::of(std::string{"1.0"}),
                            tsdb_key::of(std::string{"2.0"})},
                           {ts, ts, 10, std::nullopt});
    CHECK(tsdb_sums(*rel) == std::vector<int64_t>{5, 0});
  }
}

TEST_CASE("tsdb buckets expire after their rollup's span", "[tsdb]") {
  for (auto& f : backends()) {
    INFO(f.tsdb->describe());
    auto& t = *f.tsdb;
    int64_t ts = *f.now;
    REQUIRE_FALSE(t.incr_multi({{tsdb_model::project, tsdb_key::of(1), ts, 1,
                                 std::nullopt}}));
    REQUIRE_FALSE(t.record_multi({{tsdb_model::users_affected_by_project,
                                   tsdb_key::of(1), {"u1"}, ts,
                                   std::nullopt}}));
    auto range = tsdb_range{ts, ts, 10, std::nullopt};
    CHECK(tsdb_sums(*t.get_range(tsdb_model::project, {tsdb_key::of(1)},
                                 range))[0]
          == 1);
    // The 10 s bucket lives 3600 s from its start, the hourly one longer:
    // Redis holds EXPIREAT so; the memory backend is moved past it.
    if (f.redis) {
      auto k = make_tsdb_counter_key(tsdb_model::project, 10, ts,
                                     tsdb_key::of(1), std::nullopt);
      auto at = f.redis->command({"EXPIRETIME", k.hash});
      REQUIRE(at);
      CHECK(at->as_int() == tsdb_expiry({10, 360}, ts));
      auto d = f.redis->command(
        {"EXPIRETIME", make_tsdb_distinct_key(tsdb_model::users_affected_by_project,
                                              86400, ts, tsdb_key::of(1),
                                              std::nullopt)});
      REQUIRE(d);
      CHECK(d->as_int() == tsdb_expiry({86400, 90}, ts));
      continue;
    }
    *f.now = tsdb_expiry({10, 360}, ts);
    CHECK(tsdb_sums(*t.get_range(tsdb_model::project, {tsdb_key::of(1)},
                                 range))[0]
          == 0);
    CHECK((*t.get_distinct_counts_totals(tsdb_model::users_affected_by_project,
                                          {tsdb_key::of(1)}, range))[0]
          == 0);
    CHECK(tsdb_sums(*t.get_range(tsdb_model::project, {tsdb_key::of(1)},
                                 {ts, ts, 3600, std::nullopt}))[0]
          == 1);
  }
}

TEST_CASE("tsdb distinct counts are HyperLogLog unions over buckets",
          "[tsdb]") {
  for (auto& f : backends()) {
    INFO(f.tsdb->describe());
    auto& t = *f.tsdb;
    int64_t ts = *f.now;
    std::vector<std::string> first, second;
    for (int i = 0; i < 600; ++i)
      first.push_back("user:" + std::to_string(i));
    for (int i = 400; i < 1000; ++i)
      second.push_back("user:" + std::to_string(i));
    REQUIRE_FALSE(t.record_multi(
      {{tsdb_model::users_affected_by_group, tsdb_key::of(4), first, ts - 10,
        std::nullopt},
       {tsdb_model::users_affected_by_group, tsdb_key::of(4), second, ts, 3}}));
    auto range = tsdb_range{ts - 10, ts, 10, std::nullopt};
    auto series = t.get_distinct_counts_series(
      tsdb_model::users_affected_by_group, {tsdb_key::of(4)}, range);
    REQUIRE(series);
    REQUIRE((*series)[0].size() == 2);
    // Within HyperLogLog's error (0.81 % standard error; 2 % here); the
    // union of 0..999 is exactly what Redis's PFCOUNT answers, 1007.
    auto near_600 = [](int64_t n) { return n >= 588 && n <= 612; };
    CHECK(near_600((*series)[0][0].second));
    CHECK(near_600((*series)[0][1].second));
    auto totals = t.get_distinct_counts_totals(
      tsdb_model::users_affected_by_group, {tsdb_key::of(4), tsdb_key::of(5)},
      range);
    REQUIRE(totals);
    CHECK(*totals == std::vector<int64_t>{1007, 0});
    auto env = t.get_distinct_counts_totals(
      tsdb_model::users_affected_by_group, {tsdb_key::of(4)},
      {ts - 10, ts, 10, 3});
    CHECK(near_600((*env)[0]));
  }
}

TEST_CASE("the dummy tsdb keeps nothing and answers zeros", "[tsdb]") {
  tsdb_backend_options o; // dummy by default, as Sentry's
  auto t = make_tsdb_backend(o);
  REQUIRE(t);
  REQUIRE_FALSE((*t)->incr_multi({{tsdb_model::project, tsdb_key::of(1),
                                   100, 1, std::nullopt}}));
  auto r = (*t)->get_range(tsdb_model::project, {tsdb_key::of(1)},
                           {80, 100, 10, std::nullopt});
  REQUIRE(r);
  CHECK((*r)[0] == std::vector<tsdb_point>{{80, 0}, {90, 0}, {100, 0}});
  o.backend = "cassandra";
  auto bad = make_tsdb_backend(o);
  REQUIRE_FALSE(bad);
  CHECK_THAT(error_text(bad.error()), Catch::Contains("tsdb.backend"));
}

TEST_CASE("memory and redis distinct counts agree exactly", "[tsdb][redis]") {
  auto all = backends();
  if (all.size() < 2)
    return; // reported skipped by backends()
  int64_t ts = *all[0].now;
  for (auto& f : all) {
    for (int n : {1, 37, 700, 5000, 40000}) {
      std::vector<std::string> users;
      for (int i = 0; i < n; ++i)
        users.push_back("u" + std::to_string(n) + ":" + std::to_string(i));
      REQUIRE_FALSE(f.tsdb->record_multi(
        {{tsdb_model::users_affected_by_group, tsdb_key::of(n), users, ts,
          std::nullopt}}));
    }
  }
  std::vector<tsdb_key> keys;
  for (int n : {1, 37, 700, 5000, 40000})
    keys.push_back(tsdb_key::of(n));
  auto range = tsdb_range{ts, ts, 3600, std::nullopt};
  auto mem = all[0].tsdb->get_distinct_counts_totals(
    tsdb_model::users_affected_by_group, keys, range);
  auto red = all[1].tsdb->get_distinct_counts_totals(
    tsdb_model::users_affected_by_group, keys, range);
  REQUIRE(mem);
  REQUIRE(red);
  CHECK(*mem == *red);
}

TEST_CASE("tsdb buckets split at each rollup's boundary", "[tsdb]") {
  for (auto& f : backends()) {
    INFO(f.tsdb->describe());
    auto& t = *f.tsdb;
    // The start of today (UTC): a boundary of every rollup. The last
    // second of yesterday and the first of today count apart.
    int64_t d = tsdb_bucket_start(*f.now, 86400);
    REQUIRE_FALSE(t.incr_multi({
      {tsdb_model::project, tsdb_key::of(9), d - 1, 1, std::nullopt},
      {tsdb_model::project, tsdb_key::of(9), d, 2, std::nullopt},
      {tsdb_model::project, tsdb_key::of(9), d + 3599, 4, std::nullopt},
      {tsdb_model::project, tsdb_key::of(9), d + 3600, 8, std::nullopt},
    }));
    auto hours = t.get_range(tsdb_model::project, {tsdb_key::of(9)},
                             {d - 3600, d + 3600, 3600, std::nullopt});
    REQUIRE(hours);
    CHECK((*hours)[0] == std::vector<tsdb_point>{{d - 3600, 1},
                                                 {d, 6},
                                                 {d + 3600, 8}});
    auto days = t.get_range(tsdb_model::project, {tsdb_key::of(9)},
                            {d - 86400, d, 86400, std::nullopt});
    REQUIRE(days);
    CHECK((*days)[0] == std::vector<tsdb_point>{{d - 86400, 1}, {d, 14}});
    // A range that starts one second before a boundary walks back from its
    // end: the earlier bucket is not reached.
    auto walk = t.get_range(tsdb_model::project, {tsdb_key::of(9)},
                            {d - 1, d, 3600, std::nullopt});
    CHECK((*walk)[0] == std::vector<tsdb_point>{{d, 6}});
    // Distinct counts split alike.
    REQUIRE_FALSE(t.record_multi(
      {{tsdb_model::users_affected_by_project, tsdb_key::of(9), {"a", "b"},
        d - 1, std::nullopt},
       {tsdb_model::users_affected_by_project, tsdb_key::of(9), {"b", "c"},
        d, std::nullopt}}));
    auto users = t.get_distinct_counts_series(
      tsdb_model::users_affected_by_project, {tsdb_key::of(9)},
      {d - 86400, d, 86400, std::nullopt});
    REQUIRE(users);
    CHECK((*users)[0] == std::vector<tsdb_point>{{d - 86400, 2}, {d, 2}});
    auto union_ = t.get_distinct_counts_totals(
      tsdb_model::users_affected_by_project, {tsdb_key::of(9)},
      {d - 86400, d, 86400, std::nullopt});
    CHECK((*union_)[0] == 3);
  }
}

TEST_CASE("tsdb backends bucket by the configured rollups", "[tsdb]") {
  // tsdb.rollups: [[60, 10], [600, 6]]: minutes for ten minutes, then
  // ten-minute buckets for an hour.
  const std::vector<tsdb_rollup> rollups = {{60, 10}, {600, 6}};
  auto now = std::make_shared<std::atomic<int64_t>>(
    tsdb_bucket_start(base_time(), 600) + 305);
  tsdb_backend_options o;
  o.backend = "memory";
  o.url = "memory://tsdb-rollups-contract";
  o.rollups = rollups;
  o.clock = [now] { return now->load(); };
  auto b = make_tsdb_backend(o);
  REQUIRE(b);
  auto& t = **b;
  int64_t ts = *now;
  int64_t m = tsdb_bucket_start(ts, 60);
  REQUIRE_FALSE(t.incr_multi({
    {tsdb_model::group, tsdb_key::of(1), ts - 60, 1, std::nullopt},
    {tsdb_model::group, tsdb_key::of(1), ts, 2, std::nullopt},
  }));
  auto minutes = t.get_range(tsdb_model::group, {tsdb_key::of(1)},
                             {ts - 60, ts, 60, std::nullopt});
  REQUIRE(minutes);
  CHECK((*minutes)[0] == std::vector<tsdb_point>{{m - 60, 1}, {m, 2}});
  auto tens = t.get_range(tsdb_model::group, {tsdb_key::of(1)},
                          {ts, ts, 600, std::nullopt});
  REQUIRE(tens);
  CHECK(tsdb_sums(*tens)[0] == 3);
  // Sentry's default rollups are not there.
  CHECK_FALSE(t.get_range(tsdb_model::group, {tsdb_key::of(1)},
                          {ts, ts, 10, std::nullopt}));
  CHECK_FALSE(t.get_range(tsdb_model::group, {tsdb_key::of(1)},
                          {ts, ts, 3600, std::nullopt}));
  // The optimal rollup of a range is the first whose span covers it.
  CHECK(tsdb_optimal_rollup(rollups, ts - 600, ts).seconds == 60);
  CHECK(tsdb_optimal_rollup(rollups, ts - 601, ts).seconds == 600);
  CHECK(tsdb_optimal_rollup(rollups, ts - 86400, ts).seconds == 600);
  // The minutes go ten minutes after their bucket's start, the ten-minute
  // buckets an hour after theirs.
  *now = tsdb_expiry({60, 10}, ts);
  CHECK(tsdb_sums(*t.get_range(tsdb_model::group, {tsdb_key::of(1)},
                               {ts, ts, 60, std::nullopt}))[0]
        == 0);
  CHECK(tsdb_sums(*t.get_range(tsdb_model::group, {tsdb_key::of(1)},
                               {ts, ts, 600, std::nullopt}))[0]
        == 3);
  *now = tsdb_expiry({600, 6}, ts);
  CHECK(tsdb_sums(*t.get_range(tsdb_model::group, {tsdb_key::of(1)},
                               {ts, ts, 600, std::nullopt}))[0]
        == 0);
  // No rollups at all is refused when the backend is made.
  o.rollups.clear();
  auto none = make_tsdb_backend(o);
  REQUIRE_FALSE(none);
  CHECK_THAT(error_text(none.error()), Catch::Contains("tsdb.rollups"));
}

TEST_CASE("tsdb distinct counts are within HyperLogLog's error of known "
          "cardinalities",
          "[tsdb]") {
  for (auto& f : backends()) {
    INFO(f.tsdb->describe());
    int64_t ts = *f.now;
    const std::vector<int> sizes = {1, 2, 10, 100, 1000, 10000, 50000};
    std::vector<tsdb_key> keys;
    for (int n : sizes) {
      std::vector<std::string> users;
      for (int i = 0; i < n; ++i)
        users.push_back("id:" + std::to_string(n) + "-" + std::to_string(i));
      // Each value twice, in two buckets: a distinct count, not a sum.
      REQUIRE_FALSE(f.tsdb->record_multi(
        {{tsdb_model::users_affected_by_group, tsdb_key::of(100000 + n),
          users, ts - 10, std::nullopt},
         {tsdb_model::users_affected_by_group, tsdb_key::of(100000 + n),
          users, ts, std::nullopt}}));
      keys.push_back(tsdb_key::of(100000 + n));
    }
    auto totals = f.tsdb->get_distinct_counts_totals(
      tsdb_model::users_affected_by_group, keys,
      {ts - 10, ts, 10, std::nullopt});
    REQUIRE(totals);
    for (size_t i = 0; i < sizes.size(); ++i) {
      double n = sizes[i];
      auto got = static_cast<double>((*totals)[i]);
      INFO("cardinality " << n << ", counted " << got);
      // Redis's HyperLogLog (16384 registers): standard error 0.81 %;
      // three of them, and small sets are counted exactly.
      if (n <= 100)
        CHECK(got == n);
      else
        CHECK(std::abs(got - n) <= 3 * 0.0081 * n);
    }
  }
}
