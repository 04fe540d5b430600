// The write buffer's contract, run against every backend (memory; redis
// once its backend lands), and its SQL apply on SQLite and PostgreSQL:
// increments coalesce per row, a take is atomic and applies once, and
// names from the store are checked before they reach SQL.

#include <catch2/catch.hpp>

#include <atomic>
#include <map>
#include <filesystem>
#include <string>
#include <thread>

#include <unistd.h>

#include "actors/backends/buffer.hpp"
#include "actors/backends/buffer_sql.hpp"
#include "actors/backends/event_store.hpp"
#include "adapters/redis.hpp"
#include "adapters/sql.hpp"
#include "tests/integration/buffer_test_support.hpp"
#include "tests/support/test_servers.hpp"

using namespace vigil;
using namespace vigil::testing;


TEST_CASE("buffer increments of one row coalesce until it is taken",
          "[buffer]") {
  for (const auto& o : backends()) {
    INFO(o.backend);
    auto b = open_buffer(o);
    REQUIRE_FALSE(b->incr({seen(5, 1, 1000000), seen(5, 2, 3000000),
                           seen(6, 1, 2000000)},
                          100));
    REQUIRE_FALSE(b->incr({seen(5, 4, 2000000)}, 101));
    auto got = b->get("sentry.group", {"times_seen", "other"},
                      {{"id", buffer_value::of(5)}});
    REQUIRE(got);
    CHECK((*got)["times_seen"] == 7);
    CHECK((*got)["other"] == 0);
    auto keys = b->pending(0, 100);
    REQUIRE(keys);
    REQUIRE(keys->size() == 2);
    auto k5 = buffer_row_key("sentry.group", {{"id", buffer_value::of(5)}});
    auto t = b->take(k5, 102);
    REQUIRE(t);
    REQUIRE(*t);
    CHECK((*t)->row_key == k5);
    CHECK((*t)->sums.columns.at("times_seen") == 7);
    // The last value written wins among extras (the SQL apply keeps the
    // greatest).
    CHECK((*t)->sums.extra.at("last_seen") == buffer_value::of_datetime(2000000));
    // Taken: gone from the row and the pending set; a second take is empty.
    got = b->get("sentry.group", {"times_seen"}, {{"id", buffer_value::of(5)}});
    CHECK((*got)["times_seen"] == 0);
    keys = b->pending(0, 100);
    CHECK(keys->size() == 1);
    auto again = b->take(k5, 103);
    REQUIRE(again);
    CHECK_FALSE(*again);
    // An increment after the take starts the row again.
    REQUIRE_FALSE(b->incr({seen(5, 1, 4000000)}, 104));
    t = b->take(k5, 105);
    REQUIRE(*t);
    CHECK((*t)->sums.columns.at("times_seen") == 1);
  }
}

TEST_CASE("buffer takes stay until finished", "[buffer]") {
  for (const auto& o : backends()) {
    INFO(o.backend);
    auto b = open_buffer(o);
    REQUIRE_FALSE(b->incr({seen(1, 3, 0), seen(2, 4, 0)}, 100));
    auto t1 = b->take(buffer_row_key("sentry.group",
                                     {{"id", buffer_value::of(1)}}),
                      200);
    auto t2 = b->take(buffer_row_key("sentry.group",
                                     {{"id", buffer_value::of(2)}}),
                      300);
    REQUIRE((t1 && *t1 && t2 && *t2));
    CHECK((*t1)->take_id != (*t2)->take_id);
    auto left = b->unfinished(250);
    REQUIRE(left);
    REQUIRE(left->size() == 1);
    CHECK(left->front().take_id == (*t1)->take_id);
    CHECK(left->front().sums.columns.at("times_seen") == 3);
    REQUIRE_FALSE(b->finish((*t1)->take_id));
    left = b->unfinished(1000);
    REQUIRE(left->size() == 1);
    CHECK(left->front().take_id == (*t2)->take_id);
  }
}

TEST_CASE("buffer rows spread over pending partitions by crc32 of the key",
          "[buffer]") {
  for (const auto& o : backends(4)) {
    INFO(o.backend);
    auto b = open_buffer(o);
    std::vector<buffer_incr> batch;
    for (int64_t id = 1; id <= 40; ++id)
      batch.push_back(seen(id, 1, 0));
    REQUIRE_FALSE(b->incr(batch, 100));
    size_t total = 0;
    for (int p = 0; p < 4; ++p) {
      auto keys = b->pending(p, 1000);
      REQUIRE(keys);
      for (const auto& k : *keys)
        CHECK(buffer_pending_key(k, 4) == buffer_partition_key(p, 4));
      total += keys->size();
      // What `vigil buffer stats` shows: the same count.
      auto n = b->pending_count(p);
      REQUIRE(n);
      CHECK(*n == keys->size());
    }
    CHECK(total == 40);
    auto few = b->pending(0, 2);
    CHECK(few->size() <= 2);
  }
}

TEST_CASE("buffer locks have one holder until released or expired",
          "[buffer]") {
  for (const auto& o : backends()) {
    INFO(o.backend);
    auto b = open_buffer(o);
    auto lock = buffer_lock_key("b:p");
    CHECK(*b->try_lock(lock, "a", std::chrono::seconds{60}));
    CHECK_FALSE(*b->try_lock(lock, "b", std::chrono::seconds{60}));
    REQUIRE_FALSE(b->unlock(lock, "b")); // not the holder: no effect
    CHECK_FALSE(*b->try_lock(lock, "b", std::chrono::seconds{60}));
    REQUIRE_FALSE(b->unlock(lock, "a"));
    CHECK(*b->try_lock(lock, "b", std::chrono::seconds{60}));
  }
}

TEST_CASE("redis buffer rows are Sentry's RedisBuffer hashes",
          "[buffer][redis]") {
  auto url = vigil::testing::test_server_url("VIGIL_TEST_REDIS_URL");
  if (url.empty())
    return;
  url = url.substr(0, url.rfind('/')) + "/45";
  auto ep = parse_redis_url(url);
  auto conn = redis_connection::connect(*ep, std::chrono::seconds{2});
  REQUIRE(conn);
  REQUIRE(conn->command({"FLUSHDB"}));
  buffer_backend_options o;
  o.backend = "redis";
  o.url = url;
  auto b = open_buffer(o);
  REQUIRE_FALSE(b->incr({seen(5, 2, 1796249105123456)}, 1796249105));
  auto key = buffer_row_key("sentry.group", {{"id", buffer_value::of(5)}});
  auto h = conn->command({"HGETALL", key});
  REQUIRE(h);
  std::map<std::string, std::string> fields;
  for (size_t i = 0; i + 1 < h->size(); i += 2)
    fields[std::string{(*h)[i].as_string()}] = (*h)[i + 1].as_string();
  CHECK(fields == std::map<std::string, std::string>{
                    {"m", "sentry.models.group.Group"},
                    {"f", R"({"id": ["i", "5"]})"},
                    {"i+times_seen", "2"},
                    {"e+last_seen", R"(["dt", "1796249105.123456"])"}});
  auto ttl = conn->command({"TTL", key});
  CHECK(ttl->as_int() > 3500);
  auto score = conn->command({"ZSCORE", "b:p", key});
  CHECK(score->as_string() == "1796249105");
  // A take keeps the sums until it is finished.
  auto t = b->take(key, 1796249106);
  REQUIRE((t && *t));
  CHECK(conn->command({"EXISTS", key})->as_int() == 0);
  CHECK(conn->command({"EXISTS", "b:t:" + (*t)->take_id})->as_int() == 1);
  REQUIRE_FALSE(b->finish((*t)->take_id));
  CHECK(conn->command({"EXISTS", "b:t:" + (*t)->take_id})->as_int() == 0);
  CHECK(conn->command({"ZCARD", "b:t"})->as_int() == 0);
}


TEST_CASE("buffer takes apply to SQL once, in one transaction", "[buffer][sql]") {
  for (const auto& url : buffer_db_urls()) {
    INFO(url.substr(0, url.find(':')));
    auto db = sql_connection::open(url);
    REQUIRE(db);
    auto& c = **db;
    REQUIRE_FALSE(event_store::migrate(c));
    REQUIRE_FALSE(bootstrap_buffer_tables(c));
    auto g1 = add_group(c, "h1");
    auto g2 = add_group(c, "h2");
    buffer_take t1{"take-1", "", seen(g1, 5, 20000000), 0};
    buffer_take t2{"take-2", "", seen(g2, 2, 5000000), 0};
    auto r = apply_buffer_takes(c, {t1, t2}, 100);
    REQUIRE(r);
    CHECK(r->applied == 2);
    CHECK(r->already_applied == 0);
    CHECK(counts_of(c, g1) == std::pair<int64_t, double>{6, 20.0});
    // last_seen only moves forward: 5 s is before the stored 10 s.
    CHECK(counts_of(c, g2) == std::pair<int64_t, double>{3, 10.0});
    // The same takes again (a flush retried after its commit): nothing.
    r = apply_buffer_takes(c, {t1, t2}, 101);
    REQUIRE(r);
    CHECK(r->applied == 0);
    CHECK(r->already_applied == 2);
    CHECK(counts_of(c, g1).first == 6);
    // A group that is gone (deleted by cleanup) cannot be made from the
    // buffer: its increments are dropped and counted.
    r = apply_buffer_takes(c, {{"take-3", "", seen(99999, 1, 0), 0}}, 102);
    REQUIRE(r);
    CHECK(r->dropped == 1);
    // Names from the store are checked before anything is written.
    auto evil = seen(g1, 1, 0);
    evil.columns = {{"times_seen = 0; --", 1}};
    auto bad = apply_buffer_takes(c, {{"take-4", "", seen(g1, 1, 0), 0},
                                      {"take-5", "", evil, 0}},
                                  103);
    REQUIRE_FALSE(bad);
    CHECK(counts_of(c, g1).first == 6);
    auto unknown = seen(g1, 1, 0);
    unknown.model = "sentry.user";
    CHECK_FALSE(apply_buffer_takes(c, {{"take-6", "", unknown, 0}}, 104));
    // Applied takes are forgotten after a while.
    auto forgotten = forget_applied_takes(c, 102);
    REQUIRE(forgotten);
    CHECK(*forgotten == 2);
  }
}
