// The digests store's contract, run against memory and redis (when the
// harness started a Redis): Sentry's scheduling (ready at once, increment
// and maximum delay, minimum delay after a delivery), capacity, the
// maintenance pass, the timeline lock, the snapshot that outlives an
// opener that died, delete; the dummy backend; the Redis key layout; the
// configuration keys.

#include <catch2/catch.hpp>

#include <atomic>
#include <set>
#include <string>
#include <thread>

#include "actors/backends/digests.hpp"
#include "adapters/redis.hpp"
#include "config/config.hpp"
#include "messages/errors.hpp"
#include "tests/support/test_servers.hpp"

using namespace vigil;

namespace {

constexpr const char* redis_db = "/47";

std::string test_redis_url() {
  auto url = vigil::testing::test_server_url("VIGIL_TEST_REDIS_URL");
  if (url.empty())
    return url;
  return url.substr(0, url.rfind('/')) + redis_db;
}

redis_connection connect(const std::string& url) {
  auto ep = parse_redis_url(url);
  REQUIRE(ep);
  auto conn = redis_connection::connect(*ep, std::chrono::seconds{2});
  REQUIRE(conn);
  return std::move(*conn);
}

// Every backend of the run, each on an empty store.
std::vector<digest_backend_options> backends(size_t capacity = 0,
                                             double chance = -1) {
  static std::atomic<int> counter{0};
  digest_backend_options mem;
  mem.backend = "memory";
  mem.url = "memory://digests-contract-" + std::to_string(++counter);
  mem.capacity = capacity;
  if (chance >= 0)
    mem.truncation_chance = chance;
  std::vector<digest_backend_options> out{mem};
  if (auto url = test_redis_url(); !url.empty()) {
    auto conn = connect(url);
    REQUIRE(conn.command({"FLUSHDB"}));
    auto red = mem;
    red.backend = "redis";
    red.url = url;
    out.push_back(red);
  }
  return out;
}

std::unique_ptr<digest_backend> open(const digest_backend_options& o) {
  auto b = make_digest_backend(o);
  REQUIRE(b);
  return std::move(*b);
}

digest_add rec(const std::string& key, const std::string& id, double ts,
               double increment = 30, double maximum = 1800) {
  return {key, {id, "value of " + id, ts}, increment, maximum};
}

std::vector<std::string> ids_of(const digest_lease& l) {
  std::vector<std::string> out;
  for (const auto& r : l.records)
    out.push_back(r.id);
  return out;
}

// The due time of `key` in the waiting set, found by scheduling: nothing is
// due before it, and it is due at it. Leaves the timeline ready.
double due_time(digest_backend& b, const std::string& key, double from,
                double to) {
  auto early = b.schedule(from, from);
  REQUIRE(early);
  REQUIRE(early->empty());
  auto due = b.schedule(to, to);
  REQUIRE(due);
  REQUIRE(due->size() == 1);
  CHECK(due->front().key == key);
  return due->front().timestamp;
}

// Opens and closes `key` at `now`, delivering its records.
void deliver(digest_backend& b, const std::string& key, double now,
             double minimum_delay = 300) {
  auto lease = b.open_digest(key, minimum_delay, now);
  REQUIRE(lease);
  REQUIRE_FALSE(b.close_digest(*lease, now));
}

} // namespace

TEST_CASE("digests: a new timeline is ready at once, and waits the minimum "
          "delay after a delivery",
          "[digests]") {
  for (const auto& o : backends()) {
    INFO(o.backend);
    auto b = open(o);
    const std::string key = "mail:p:1";
    auto first = b->add(rec(key, "e1", 1000), 1000);
    REQUIRE(first);
    CHECK(*first);
    // Ready already: later records just join it.
    CHECK_FALSE(*b->add(rec(key, "e2", 1001), 1001));
    CHECK_FALSE(*b->add(rec(key, "e3", 1002), 1002));
    // Ready timelines are not scheduled again.
    CHECK(b->schedule(5000, 5000)->empty());
    auto lease = b->open_digest(key, 300, 1010);
    REQUIRE(lease);
    // Newest first, as Sentry's ZREVRANGE.
    CHECK(ids_of(*lease) == std::vector<std::string>{"e3", "e2", "e1"});
    CHECK(lease->records[0].value == "value of e3");
    CHECK(lease->records[0].timestamp == Approx(1002));
    REQUIRE_FALSE(b->close_digest(*lease, 1010));
    // Delivered: it waits minimum_delay from the close, although empty.
    CHECK(due_time(*b, key, 1309, 1310) == Approx(1310));
    // Due again with nothing new: an empty close forgets the timeline...
    lease = b->open_digest(key, 300, 1310);
    REQUIRE(lease);
    CHECK(lease->records.empty());
    REQUIRE_FALSE(b->close_digest(*lease, 1310));
    CHECK(b->schedule(1e9, 1e9)->empty());
    // ... so the next record makes it ready at once again.
    CHECK(*b->add(rec(key, "e4", 2000), 2000));
    auto st = b->stats();
    CHECK(st.records_added == 4);
    CHECK(st.ready_at_once == 2);
    CHECK(st.opened == 2);
    CHECK(st.closed == 2);
    CHECK(st.records_delivered == 3);
  }
}

TEST_CASE("digests: each record delays a waiting timeline by the increment, "
          "up to the maximum after the last delivery",
          "[digests]") {
  for (const auto& o : backends()) {
    INFO(o.backend);
    auto b = open(o);
    const std::string key = "mail:p:2";
    REQUIRE(*b->add(rec(key, "a", 1000), 1000));
    deliver(*b, key, 1000); // waiting until 1300, last delivery 1000
    CHECK_FALSE(*b->add(rec(key, "b", 1100), 1100)); // 1330
    CHECK_FALSE(*b->add(rec(key, "c", 1101), 1101)); // 1360
    CHECK(due_time(*b, key, 1359, 1360) == Approx(1360));
    deliver(*b, key, 1400); // waiting until 1700, last 1400
    // 100 records of 30 s each would be 4700: the maximum caps it at
    // 1400 + 1800.
    for (int i = 0; i < 100; ++i)
      CHECK_FALSE(*b->add(rec(key, "r" + std::to_string(i), 1500 + i), 1500));
    CHECK(due_time(*b, key, 3199, 3200) == Approx(3200));
    // A project's own delays, per add.
    deliver(*b, key, 4000); // waiting until 4300
    CHECK_FALSE(*b->add(rec(key, "x", 4001, 100, 350), 4001)); // 4350 cap
    CHECK(due_time(*b, key, 4349, 4350) == Approx(4350));
  }
}

TEST_CASE("digests: a batch of adds answers as the adds one by one",
          "[digests]") {
  for (const auto& o : backends()) {
    INFO(o.backend);
    auto b = open(o);
    auto r = b->add_many({rec("t:a", "1", 10), rec("t:a", "2", 11),
                          rec("t:b", "1", 12), rec("t:a", "3", 13),
                          rec("t:c", "1", 14)},
                         20);
    REQUIRE(r);
    CHECK(*r == std::vector<bool>{true, false, true, false, true});
    deliver(*b, "t:a", 100); // waiting until 400
    r = b->add_many({rec("t:a", "4", 101), rec("t:a", "5", 102),
                     rec("t:a", "6", 103)},
                    103);
    REQUIRE(r);
    CHECK(*r == std::vector<bool>{false, false, false});
    // Three increments in one batch: 400 + 90.
    auto due = b->schedule(1000, 1000);
    REQUIRE(due);
    REQUIRE(due->size() == 1);
    CHECK(due->front().key == "t:a");
    CHECK(due->front().timestamp == Approx(490));
    // Larger than one script call's slice, over many timelines.
    std::vector<digest_add> many;
    for (int i = 0; i < 2500; ++i)
      many.push_back(rec("bulk:" + std::to_string(i % 10),
                         "e" + std::to_string(i), 2000 + i));
    r = b->add_many(many, 5000);
    REQUIRE(r);
    REQUIRE(r->size() == 2500);
    for (int i = 0; i < 2500; ++i)
      CHECK((*r)[static_cast<size_t>(i)] == (i < 10));
    auto lease = b->open_digest("bulk:3", 300, 5000);
    REQUIRE(lease);
    CHECK(lease->records.size() == 250);
    CHECK(lease->records.front().id == "e2493");
    CHECK(b->add_many({}, 1)->empty());
  }
}

TEST_CASE("digests: a capacity keeps the newest records", "[digests]") {
  // A truncation chance of 1 makes the capacity a hard limit (Sentry's
  // default chance is 1/capacity).
  for (const auto& o : backends(3, 1.0)) {
    INFO(o.backend);
    auto b = open(o);
    const std::string key = "mail:p:3";
    for (int i = 1; i <= 5; ++i)
      REQUIRE(b->add(rec(key, "e" + std::to_string(i), 100 + i), 200));
    auto lease = b->open_digest(key, 300, 200);
    REQUIRE(lease);
    CHECK(ids_of(*lease) == std::vector<std::string>{"e5", "e4", "e3"});
    CHECK(lease->ids.size() == 3);
    // Not delivered; two more arrive: the snapshot and the timeline merge,
    // trimmed to the capacity again.
    REQUIRE_FALSE(b->release_digest(*lease));
    REQUIRE(b->add(rec(key, "e6", 106), 201));
    REQUIRE(b->add(rec(key, "e7", 107), 201));
    lease = b->open_digest(key, 300, 202);
    REQUIRE(lease);
    CHECK(ids_of(*lease) == std::vector<std::string>{"e7", "e6", "e5"});
  }
  // Sentry's default chance with a capacity of 1 is 1: a hard limit too.
  for (const auto& o : backends(1)) {
    INFO(o.backend);
    CHECK(o.effective_truncation_chance() == 1.0);
    auto b = open(o);
    REQUIRE(b->add(rec("k", "a", 1), 1));
    REQUIRE(b->add(rec("k", "b", 2), 2));
    auto lease = b->open_digest("k", 300, 3);
    REQUIRE(lease);
    CHECK(ids_of(*lease) == std::vector<std::string>{"b"});
  }
  for (const auto& o : backends())
    CHECK(o.effective_truncation_chance() == 0.0);
}

TEST_CASE("digests: maintenance returns timelines stuck in ready to waiting",
          "[digests]") {
  for (const auto& o : backends()) {
    INFO(o.backend);
    auto b = open(o);
    const std::string key = "mail:p:4";
    REQUIRE(*b->add(rec(key, "e1", 100), 100)); // ready, scored 100
    // Not stuck yet.
    REQUIRE_FALSE(b->maintenance(99, 99));
    auto lease = b->open_digest(key, 300, 100);
    REQUIRE(lease);
    REQUIRE_FALSE(b->release_digest(*lease));
    // Its delivery was lost: back to waiting, still scored 100.
    REQUIRE_FALSE(b->maintenance(400, 400));
    auto refused = b->open_digest(key, 300, 400);
    REQUIRE_FALSE(refused);
    CHECK(is_digest_not_ready(refused.error()));
    CHECK_FALSE(is_digest_locked(refused.error()));
    CHECK(b->stats().not_ready == 1);
    // While waiting, a record moves it to min(score, record time) (no
    // delivery known yet).
    CHECK_FALSE(*b->add(rec(key, "e2", 500), 500));
    auto due = b->schedule(400, 400);
    REQUIRE(due);
    REQUIRE(due->size() == 1);
    CHECK(due->front().timestamp == Approx(100));
    lease = b->open_digest(key, 300, 401);
    REQUIRE(lease);
    CHECK(ids_of(*lease) == std::vector<std::string>{"e2", "e1"});
  }
}

TEST_CASE("digests: an open digest holds the timeline's lock", "[digests]") {
  for (const auto& o : backends()) {
    INFO(o.backend);
    auto b = open(o);
    auto other = open(o); // another node on the same store
    const std::string key = "mail:p:5";
    REQUIRE(*b->add(rec(key, "e1", 100), 100));
    auto first = b->open_digest(key, 300, 101);
    REQUIRE(first);
    // A second open is refused while the first holds the lock, from the
    // same backend or another.
    auto second = b->open_digest(key, 300, 102);
    REQUIRE_FALSE(second);
    CHECK(is_digest_locked(second.error()));
    auto third = other->open_digest(key, 300, 102);
    REQUIRE_FALSE(third);
    CHECK(is_digest_locked(third.error()));
    CHECK(b->stats().locked == 1);
    // Nor may it be deleted meanwhile.
    auto del = other->delete_timeline(key, 102);
    CHECK(is_digest_locked(del));
    // A lease that is not the holder's changes nothing.
    auto fake = *first;
    fake.lock_token = "not-the-holder";
    REQUIRE_FALSE(other->release_digest(fake));
    CHECK(is_digest_locked(other->open_digest(key, 300, 103).error()));
    CHECK(is_digest_locked(other->close_digest(fake, 103)));
    // Released: the other node opens it and gets the same records.
    REQUIRE_FALSE(b->release_digest(*first));
    auto taken = other->open_digest(key, 300, 104);
    REQUIRE(taken);
    CHECK(ids_of(*taken) == std::vector<std::string>{"e1"});
    // The first lease may not close what the other holds now.
    CHECK(is_digest_locked(b->close_digest(*first, 105)));
    REQUIRE_FALSE(other->close_digest(*taken, 105));
    // Closed: the lock is free and the timeline waits.
    CHECK(due_time(*b, key, 404, 405) == Approx(405));
    REQUIRE(b->open_digest(key, 300, 405));
  }
}

TEST_CASE("digests: a digest opened and never closed is delivered again",
          "[digests]") {
  for (const auto& o : backends()) {
    INFO(o.backend);
    const std::string key = "mail:p:6";
    // Keeps the memory store (which lives while a backend uses it) across
    // the "restart"; Redis keeps it anyway.
    auto store = open(o);
    auto before = open(o);
    REQUIRE(*before->add(rec(key, "e1", 100), 100));
    REQUIRE_FALSE(*before->add(rec(key, "e2", 101), 101));
    auto lost = before->open_digest(key, 300, 102);
    REQUIRE(lost);
    CHECK(lost->records.size() == 2);
    // The node dies before its mail went out: no close. Its lock ends
    // (released here, as its expiry would), a record arrives meanwhile.
    REQUIRE_FALSE(before->release_digest(*lost));
    before.reset();
    auto after = open(o); // the restarted node
    REQUIRE_FALSE(*after->add(rec(key, "e3", 103), 103));
    // Maintenance finds it stuck in ready; schedule makes it due again.
    REQUIRE_FALSE(after->maintenance(400, 400));
    auto due = after->schedule(400, 400);
    REQUIRE(due);
    REQUIRE(due->size() == 1);
    auto again = after->open_digest(key, 300, 401);
    REQUIRE(again);
    // The snapshot's records again, with the new one.
    CHECK(ids_of(*again) == std::vector<std::string>{"e3", "e2", "e1"});
    CHECK(again->records[1].value == "value of e2");
    REQUIRE_FALSE(after->close_digest(*again, 401));
    // Delivered: the snapshot is gone.
    REQUIRE_FALSE(after->maintenance(1e9, 1e9));
    REQUIRE(after->schedule(1e9, 1e9)->size() == 1);
    auto empty = after->open_digest(key, 300, 1000);
    REQUIRE(empty);
    CHECK(empty->records.empty());
  }
}

TEST_CASE("digests: the lock of an opener that died expires", "[digests]") {
  for (auto o : backends()) {
    INFO(o.backend);
    o.lock_ttl = std::chrono::seconds{1};
    auto b = open(o);
    const std::string key = "mail:p:7";
    REQUIRE(*b->add(rec(key, "e1", 100), 100));
    REQUIRE(b->open_digest(key, 300, 100));
    // Polls for the lock's end (no assertion on when it ends).
    caf::expected<digest_lease> again = caf::make_error(errc::unavailable);
    for (int i = 0; i < 200 && !again; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds{50});
      again = b->open_digest(key, 300, 101);
      if (!again)
        REQUIRE(is_digest_locked(again.error()));
    }
    REQUIRE(again);
    CHECK(ids_of(*again) == std::vector<std::string>{"e1"});
  }
}

TEST_CASE("digests: delete removes a timeline and its records", "[digests]") {
  for (const auto& o : backends()) {
    INFO(o.backend);
    auto b = open(o);
    const std::string key = "mail:p:8";
    REQUIRE(*b->add(rec(key, "e1", 100), 100));
    auto lease = b->open_digest(key, 300, 100);
    REQUIRE(lease);
    REQUIRE_FALSE(b->release_digest(*lease));
    REQUIRE_FALSE(*b->add(rec(key, "e2", 101), 101));
    REQUIRE(*b->add(rec("mail:p:9", "x", 101), 101));
    REQUIRE_FALSE(b->delete_timeline(key, 102));
    CHECK(is_digest_not_ready(b->open_digest(key, 300, 103).error()));
    REQUIRE_FALSE(b->maintenance(1e9, 1e9));
    auto due = b->schedule(1e9, 1e9);
    REQUIRE(due);
    REQUIRE(due->size() == 1);
    CHECK(due->front().key == "mail:p:9");
    // Gone entirely: a new record starts it afresh, ready at once, alone.
    CHECK(*b->add(rec(key, "e3", 200), 200));
    auto fresh = b->open_digest(key, 300, 200);
    REQUIRE(fresh);
    CHECK(ids_of(*fresh) == std::vector<std::string>{"e3"});
    // Deleting what does not exist is fine.
    REQUIRE_FALSE(b->delete_timeline("mail:p:none", 200));
  }
}

TEST_CASE("digests: memory backends of one url share timelines",
          "[digests]") {
  digest_backend_options o;
  o.url = "memory://digests-shared";
  auto a = open(o);
  auto b = open(o);
  o.url = "memory://digests-elsewhere";
  auto c = open(o);
  REQUIRE(*a->add(rec("k", "1", 1), 1));
  CHECK_FALSE(*b->add(rec("k", "2", 2), 2));
  CHECK(*c->add(rec("k", "3", 3), 3));
  CHECK(b->open_digest("k", 300, 4)->records.size() == 2);
}

TEST_CASE("digests: the dummy backend accepts and forgets", "[digests]") {
  digest_backend_options o;
  o.backend = "dummy";
  auto b = open(o);
  CHECK(b->describe() == "dummy digests");
  CHECK_FALSE(*b->add(rec("k", "1", 1), 1));
  CHECK(*b->add_many({rec("k", "2", 2), rec("j", "1", 2)}, 2)
        == std::vector<bool>{false, false});
  CHECK(b->schedule(1e9, 1e9)->empty());
  REQUIRE_FALSE(b->maintenance(1e9, 1e9));
  auto lease = b->open_digest("k", 300, 3);
  REQUIRE(lease);
  CHECK(lease->records.empty());
  REQUIRE_FALSE(b->close_digest(*lease, 3));
  REQUIRE_FALSE(b->delete_timeline("k", 3));
  CHECK(b->stats().records_added == 3);
  o.backend = "carrier-pigeon";
  auto bad = make_digest_backend(o);
  REQUIRE_FALSE(bad);
  CHECK_THAT(error_text(bad.error()), Catch::Contains("digests.backend"));
}

TEST_CASE("redis digests keep Sentry's keys under namespace d",
          "[digests][redis]") {
  auto url = test_redis_url();
  if (url.empty())
    return;
  auto conn = connect(url);
  REQUIRE(conn.command({"FLUSHDB"}));
  digest_backend_options o;
  o.backend = "redis";
  o.url = url;
  auto b = open(o);
  CHECK(b->describe().find("redis digests redis://") == 0);
  const std::string key = "mail:p:1";
  REQUIRE(*b->add(rec(key, "ev1", 1796249105.25), 1796249105));
  // A server that forgot the script (restarted) gets it again.
  REQUIRE(conn.command({"SCRIPT", "FLUSH"}));
  REQUIRE_FALSE(*b->add(rec(key, "ev2", 1796249106), 1796249106));
  auto keys = [&] {
    std::set<std::string> out;
    auto r = conn.command({"KEYS", "*"});
    REQUIRE(r);
    for (const auto& k : r->elements())
      out.emplace(k.as_string());
    return out;
  };
  CHECK(keys() == std::set<std::string>{"d:s:r", "d:t:mail:p:1",
                                        "d:t:mail:p:1:r:ev1",
                                        "d:t:mail:p:1:r:ev2"});
  CHECK(conn.command({"GET", "d:t:mail:p:1:r:ev1"})->as_string()
        == "value of ev1");
  CHECK(conn.command({"ZSCORE", "d:t:mail:p:1", "ev1"})->as_string()
        == "1796249105.25");
  // Ready scored by the first record's time.
  CHECK(conn.command({"ZSCORE", "d:s:r", key})->as_string()
        == "1796249105.25");
  for (auto k : {"d:t:mail:p:1", "d:t:mail:p:1:r:ev1"}) {
    auto ttl = conn.command({"TTL", k})->as_int();
    CHECK(ttl > 3500);
    CHECK(ttl <= 3600);
  }
  auto lease = b->open_digest(key, 300, 1796249110);
  REQUIRE(lease);
  // Open: the timeline renamed into the snapshot, the lock Sentry's
  // LockManager would take (prefix "l:"), for 30 s.
  CHECK(keys() == std::set<std::string>{"d:s:r", "d:t:mail:p:1:d",
                                        "d:t:mail:p:1:r:ev1",
                                        "d:t:mail:p:1:r:ev2",
                                        "l:d:t:mail:p:1"});
  CHECK(conn.command({"GET", "l:d:t:mail:p:1"})->as_string()
        == lease->lock_token);
  auto lock_ttl = conn.command({"TTL", "l:d:t:mail:p:1"})->as_int();
  CHECK(lock_ttl > 0);
  CHECK(lock_ttl <= 30);
  CHECK(conn.command({"TTL", "d:t:mail:p:1:d"})->as_int() > 3500);
  REQUIRE_FALSE(b->close_digest(*lease, 1796249200));
  // Closed: the records gone, the last delivery kept, waiting until
  // close + minimum delay.
  CHECK(keys() == std::set<std::string>{"d:s:w", "d:t:mail:p:1:l"});
  CHECK(conn.command({"GET", "d:t:mail:p:1:l"})->as_string()
        == "1796249200");
  CHECK(conn.command({"ZSCORE", "d:s:w", key})->as_string() == "1796249500");
  CHECK(conn.command({"TTL", "d:t:mail:p:1:l"})->as_int() > 3500);
  // A record evicted before the open is left out of the records, but its
  // id is closed with the others.
  REQUIRE_FALSE(*b->add(rec(key, "ev3", 1796249300), 1796249300));
  REQUIRE_FALSE(*b->add(rec(key, "ev4", 1796249301), 1796249301));
  REQUIRE(conn.command({"DEL", "d:t:mail:p:1:r:ev3"}));
  REQUIRE(b->schedule(1796249600, 1796249600)->size() == 1);
  lease = b->open_digest(key, 300, 1796249600);
  REQUIRE(lease);
  CHECK(ids_of(*lease) == std::vector<std::string>{"ev4"});
  CHECK(lease->ids == std::vector<std::string>{"ev4", "ev3"});
  REQUIRE_FALSE(b->close_digest(*lease, 1796249600));
  CHECK(conn.command({"EXISTS", "d:t:mail:p:1:d"})->as_int() == 0);
  REQUIRE_FALSE(b->delete_timeline(key, 1796249601));
  CHECK(keys().empty());
}

TEST_CASE("redis digests fail cleanly without a server", "[digests][redis]") {
  digest_backend_options o;
  o.backend = "redis";
  o.url = "redis://127.0.0.1:1/0";
  o.timeout = std::chrono::milliseconds{200};
  auto b = open(o);
  auto r = b->add(rec("k", "1", 1), 1);
  REQUIRE_FALSE(r);
  CHECK(r.error() == errc::connection_failed);
  REQUIRE_FALSE(b->schedule(1, 1));
  o.url = "http://nowhere";
  CHECK_FALSE(make_digest_backend(o));
}

TEST_CASE("digests options come from digests.* keys", "[digests][config]") {
  auto cfg = config::from_yaml("", {});
  REQUIRE(cfg);
  auto o = make_digest_backend_options(*cfg);
  REQUIRE(o);
  CHECK(o->backend == "memory");
  CHECK(o->minimum_delay == 300);
  CHECK(o->maximum_delay == 1800);
  CHECK(o->increment_delay == 30);
  CHECK(o->capacity == 0);
  CHECK(o->ttl == std::chrono::seconds{3600});
  cfg = config::from_yaml(
    "digests:\n  backend: redis\n  options: {cluster: digests, ttl: 7200}\n"
    "  minimum-delay: 60\n  maximum-delay: 600\n  increment-delay: 5\n"
    "  capacity: 100\n"
    "redis:\n  clusters:\n    digests: {hosts: ['redis://127.0.0.1:6390/3']}\n",
    {});
  REQUIRE(cfg);
  o = make_digest_backend_options(*cfg);
  REQUIRE(o);
  CHECK(o->backend == "redis");
  CHECK(o->url == "redis://127.0.0.1:6390/3");
  CHECK(o->ttl == std::chrono::seconds{7200});
  CHECK(o->minimum_delay == 60);
  CHECK(o->maximum_delay == 600);
  CHECK(o->increment_delay == 5);
  CHECK(o->capacity == 100);
  CHECK(o->effective_truncation_chance() == Approx(0.01));
  // Errors name the key.
  auto bad = [](const std::string& yaml) {
    auto c = config::from_yaml(yaml, {});
    if (!c)
      return error_text(c.error());
    auto opts = make_digest_backend_options(*c);
    return opts ? std::string{} : error_text(opts.error());
  };
  CHECK_THAT(bad("digests: {capacity: -1}\n"),
             Catch::Contains("digests.capacity"));
  CHECK_THAT(bad("digests: {backend: pigeon}\n"),
             Catch::Contains("digests.backend"));
  CHECK_THAT(bad("digests: {minimum-delay: soon}\n"),
             Catch::Contains("digests.minimum-delay"));
  CHECK_THAT(bad("digests: {options: {clutser: default}}\n"),
             Catch::Contains("digests.options"));
  CHECK_THAT(bad("digests: {backend: redis, options: {cluster: nope}}\n"),
             Catch::Contains("digests.options.cluster"));
}
