// One contract for every quota backend: the same cases run against the
// in-process store and a real redis-server (VIGIL_TEST_REDIS_URL, started by
// tests/run_all.py). Time is a settable clock that starts at the real time
// (Redis expires keys by the real clock) and only moves forward.

#include <catch2/catch.hpp>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <optional>
#include <thread>

#include "actors/backends/quota.hpp"
#include "adapters/redis.hpp"
#include "tests/support/test_servers.hpp"

using namespace vigil;

namespace {

std::string redis_url(int db) {
  std::string url = vigil::testing::test_server_url("VIGIL_TEST_REDIS_URL");
  if (url.empty())
    return {};
  return url.substr(0, url.rfind('/')) + "/" + std::to_string(db);
}

struct fixture {
  std::string backend;
  std::string url;
  std::shared_ptr<std::atomic<int64_t>> now;
  std::unique_ptr<quota_backend> b;
};

// A fresh backend of each kind (redis: a flushed database), sharing a clock
// that starts at the next multiple of 3600 after the real time... minus
// nothing: windows are aligned by choosing the org ids in the tests.
std::vector<fixture> backends(bool cache = true) {
  static std::atomic<int> counter{0};
  int n = ++counter;
  std::vector<fixture> out;
  auto now = std::make_shared<std::atomic<int64_t>>(quota_system_now());
  quota_backend_options opts;
  opts.clock = [now] { return now->load(); };
  opts.cache_exhausted = cache;
  opts.backend = "memory";
  opts.url = "memory://quota-contract-" + std::to_string(n);
  out.push_back({"memory", opts.url, now, make_memory_quota_backend(opts)});
  auto url = redis_url(20 + n % 20);
  if (!url.empty()) {
    auto ep = parse_redis_url(url);
    auto conn = redis_connection::connect(*ep, std::chrono::seconds{2});
    REQUIRE(conn);
    REQUIRE(conn->command({"FLUSHDB"}));
    opts.backend = "redis";
    opts.url = url;
    auto b = make_redis_quota_backend(opts);
    REQUIRE(b);
    out.push_back({"redis", url, now, std::move(*b)});
  } else {
    WARN("VIGIL_TEST_REDIS_URL is not set: the redis backend is not tested");
  }
  return out;
}

quota_config quota(std::string id, quota_scope scope, int64_t limit,
                   int64_t window) {
  quota_config q;
  q.id = std::move(id);
  q.scope = scope;
  q.limit = limit;
  q.window = window;
  q.reason_code = q.id + "_quota";
  return q;
}

quota_check check(uint64_t org, uint64_t project, uint64_t key,
                  std::vector<quota_config> qs, int64_t quantity = 1) {
  quota_check c;
  c.scoping = {org, project, key, "error"};
  c.quotas = std::move(qs);
  c.quantity = quantity;
  return c;
}

quota_decision one(quota_backend& b, const quota_check& c) {
  auto r = b.check_batch({c});
  REQUIRE(r);
  REQUIRE(r->size() == 1);
  return r->front();
}

size_t accepted(const std::vector<quota_decision>& ds) {
  size_t n = 0;
  for (auto& d : ds)
    n += d.accepted ? 1 : 0;
  return n;
}

} // namespace

TEST_CASE("quotas accept exactly the limit per window", "[quota][contract]") {
  for (auto& f : backends()) {
    INFO("backend " << f.backend);
    for (int64_t limit : {1, 7, 100}) {
      auto c = check(uint64_t(limit), 5, 9,
                     {quota("k", quota_scope::key, limit, 3600)});
      std::vector<quota_check> batch(size_t(limit) * 2 + 3, c);
      auto r = f.b->check_batch(batch);
      REQUIRE(r);
      CHECK(accepted(*r) == size_t(limit));
      // The first `limit` in arrival order are the accepted ones.
      for (size_t i = 0; i < r->size(); ++i)
        CHECK((*r)[i].accepted == (i < size_t(limit)));
      CHECK(*f.b->get_usage(c.scoping, c.quotas[0]) == limit);
    }
  }
}

TEST_CASE("quota windows roll over and are shifted per organization",
          "[quota][contract]") {
  for (auto& f : backends()) {
    INFO("backend " << f.backend);
    auto q = quota("o", quota_scope::organization, 2, 2);
    for (uint64_t org : {10, 11}) {
      auto c = check(org, 1, 0, {q});
      CHECK(one(*f.b, c).accepted);
      CHECK(one(*f.b, c).accepted);
      auto d = one(*f.b, c);
      CHECK_FALSE(d.accepted);
      auto now = f.now->load();
      auto w = make_quota_window(q, org, now);
      CHECK(d.retry_after == w.expiry - now);
      CHECK(d.reason_code == "o_quota");
      f.now->store(w.expiry); // the window of this org ends exactly here
      CHECK(one(*f.b, c).accepted);
      f.now->store(now);
    }
    f.now->fetch_add(4);
  }
}

TEST_CASE("refunds raise the remaining budget", "[quota][contract]") {
  for (auto& f : backends()) {
    INFO("backend " << f.backend);
    auto c = check(3, 4, 5, {quota("k", quota_scope::key, 3, 3600)}, 3);
    CHECK(one(*f.b, c).accepted);
    c.quantity = 1;
    CHECK_FALSE(one(*f.b, c).accepted);
    REQUIRE_FALSE(f.b->refund(c.scoping, c.quotas, 2));
    CHECK(*f.b->get_usage(c.scoping, c.quotas[0]) == 1);
    CHECK(one(*f.b, c).accepted);
    CHECK(one(*f.b, c).accepted);
    CHECK_FALSE(one(*f.b, c).accepted);
  }
}

TEST_CASE("limit 0 rejects without counting, unlimited counts",
          "[quota][contract]") {
  for (auto& f : backends()) {
    INFO("backend " << f.backend);
    auto zero = quota("", quota_scope::organization, 0, 0);
    zero.reason_code = "disabled";
    auto unl = quota("u", quota_scope::project, -1, 60);
    auto c = check(1, 2, 0, {unl, zero});
    auto d = one(*f.b, c);
    CHECK_FALSE(d.accepted);
    CHECK(d.retry_after == reject_all_secs);
    CHECK(d.reason_code == "disabled");
    CHECK(*f.b->get_usage(c.scoping, unl) == -1);
    c.quotas = {unl};
    for (int i = 0; i < 50; ++i)
      CHECK(one(*f.b, c).accepted);
    CHECK(*f.b->get_usage(c.scoping, unl) == 50);
  }
}

TEST_CASE("several quotas are all-or-nothing; longest window reports",
          "[quota][contract]") {
  for (auto& f : backends()) {
    INFO("backend " << f.backend);
    auto small = quota("k", quota_scope::key, 5, 60);
    auto big = quota("p", quota_scope::project, 3, 3600);
    auto c = check(0, 2, 7, {small, big});
    for (int i = 0; i < 3; ++i)
      CHECK(one(*f.b, c).accepted);
    auto d = one(*f.b, c);
    CHECK_FALSE(d.accepted);
    CHECK(d.reason_code == "p_quota");
    // The rejected check took nothing from the key quota.
    CHECK(*f.b->get_usage(c.scoping, small) == 3);
    // quantity 0 only checks; over_accept_once overshoots once.
    auto k = check(0, 2, 8, {small}, 0);
    CHECK(one(*f.b, k).accepted);
    CHECK(*f.b->get_usage(k.scoping, small) == -1);
    k.quantity = 4;
    CHECK(one(*f.b, k).accepted);
    CHECK_FALSE(one(*f.b, k).accepted);
    k.over_accept_once = true;
    CHECK(one(*f.b, k).accepted);
    CHECK(*f.b->get_usage(k.scoping, small) == 8);
    CHECK_FALSE(one(*f.b, k).accepted);
  }
}

TEST_CASE("categories and scope ids select quotas", "[quota][contract]") {
  for (auto& f : backends()) {
    INFO("backend " << f.backend);
    auto tx = quota("t", quota_scope::organization, 1, 60);
    tx.categories = {"transaction"};
    auto p9 = quota("p", quota_scope::project, 1, 60);
    p9.scope_id = "9";
    auto c = check(4, 2, 0, {tx, p9});
    CHECK(one(*f.b, c).accepted); // neither matches: nothing limits errors
    CHECK(one(*f.b, c).accepted);
    c.scoping.category = "transaction";
    CHECK(one(*f.b, c).accepted);
    auto d = one(*f.b, c);
    CHECK_FALSE(d.accepted);
    CHECK(d.reason_code == "t_quota");
    c.scoping = {4, 9, 0, "error"};
    CHECK(one(*f.b, c).accepted);
    CHECK_FALSE(one(*f.b, c).accepted);
  }
}

TEST_CASE("global quotas enforce one limit", "[quota][contract]") {
  for (auto& f : backends()) {
    INFO("backend " << f.backend);
    auto g = quota("g", quota_scope::global, 250, 3600);
    auto c = check(1, 1, 0, {g});
    std::vector<quota_check> batch(300, c);
    auto r = f.b->check_batch(batch);
    REQUIRE(r);
    CHECK(accepted(*r) == 250);
  }
}

TEST_CASE("batched checks answer as if sent alone", "[quota][contract]") {
  for (auto& f : backends(false)) {
    INFO("backend " << f.backend);
    std::vector<quota_check> batch;
    for (int i = 0; i < 200; ++i)
      batch.push_back(check(uint64_t(i % 3), 1, uint64_t(i % 5),
                            {quota("k", quota_scope::key, 7, 60),
                             quota("o", quota_scope::organization, 20, 60)},
                            1 + i % 3));
    auto r = f.b->check_batch(batch);
    REQUIRE(r);
    // Replay one by one against a fresh memory store on the same clock.
    quota_backend_options opts;
    opts.url = "memory://quota-replay-" + f.backend;
    auto now = f.now;
    opts.clock = [now] { return now->load(); };
    auto ref = make_memory_quota_backend(opts);
    for (size_t i = 0; i < batch.size(); ++i) {
      auto d = one(*ref, batch[i]);
      CHECK(d.accepted == (*r)[i].accepted);
      CHECK(d.reason_code == (*r)[i].reason_code);
      CHECK(d.retry_after == (*r)[i].retry_after);
    }
  }
}

TEST_CASE("redis holds Relay's keys and counters", "[quota][redis]") {
  auto url = redis_url(19);
  if (url.empty())
    return;
  auto ep = parse_redis_url(url);
  auto conn = redis_connection::connect(*ep, std::chrono::seconds{2});
  REQUIRE(conn);
  REQUIRE(conn->command({"FLUSHDB"}));
  quota_backend_options opts;
  opts.backend = "redis";
  opts.url = url;
  auto b = make_redis_quota_backend(opts);
  REQUIRE(b);
  auto q = quota("k", quota_scope::key, 10, 60);
  auto c = check(42, 43, 44, {q, quota("o", quota_scope::organization, 10, 60)},
                 3);
  auto now = quota_system_now();
  REQUIRE((*b)->check_batch({c}));
  REQUIRE_FALSE((*b)->refund(c.scoping, {q}, 1));
  auto w = make_quota_window(q, 42, now);
  auto key = "quota:k{42}44:" + std::to_string(w.slot);
  auto v = conn->command({"GET", key});
  REQUIRE(v);
  CHECK(v->as_string() == "3");
  auto okey = "quota:o{42}:" + std::to_string(w.slot);
  CHECK(conn->command({"GET", okey})->as_string() == "3");
  CHECK(conn->command({"GET", "r:" + key})->as_string() == "1");
  auto ttl = conn->command({"EXPIRETIME", key});
  if (ttl && ttl->is_integer())
    CHECK(ttl->as_int() == w.expiry + 60);
  auto pttl = conn->command({"TTL", key});
  REQUIRE(pttl);
  CHECK(pttl->as_int() > 60);
  CHECK(pttl->as_int() <= 120);
}

TEST_CASE("random batches answer as if each check were sent alone",
          "[quota][contract]") {
  // Checks that share counters in every way the run grouping must respect:
  // key, project and org quotas over few ids, quantities 0..3,
  // over_accept_once, unlimited quotas, a quota listed twice, and runs of
  // identical checks.
  for (bool cache : {false, true}) {
    for (auto& f : backends(cache)) {
      INFO("backend " << f.backend << ", cache " << cache);
      quota_backend_options opts;
      opts.url = "memory://quota-random-" + f.backend + std::to_string(cache);
      auto now = f.now;
      opts.clock = [now] { return now->load(); };
      auto ref = make_memory_quota_backend(opts);
      uint64_t seed = 12345;
      auto rnd = [&seed](uint64_t n) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        return (seed >> 33) % n;
      };
      for (int round = 0; round < 6; ++round) {
        std::vector<quota_check> batch;
        for (int i = 0; i < 400; ++i) {
          // Repeats make runs of identical checks.
          if (!batch.empty() && rnd(2) == 0) {
            batch.push_back(batch.back());
            continue;
          }
          std::vector<quota_config> qs;
          auto k = quota("k", quota_scope::key, int64_t(3 + rnd(6)), 3600);
          qs.push_back(k);
          if (rnd(2) == 0)
            qs.push_back(quota("p", quota_scope::project, 25, 3600));
          if (rnd(3) == 0)
            qs.push_back(quota("o", quota_scope::organization, 60, 3600));
          if (rnd(5) == 0)
            qs.push_back(quota("u", quota_scope::project, -1, 3600));
          if (rnd(20) == 0)
            qs.push_back(k); // the same counter twice in one check
          auto c = check(7, 1 + rnd(3), 1 + rnd(4), std::move(qs),
                         int64_t(rnd(4)));
          c.over_accept_once = rnd(4) == 0;
          batch.push_back(std::move(c));
        }
        auto r = f.b->check_batch(batch);
        REQUIRE(r);
        REQUIRE(r->size() == batch.size());
        for (size_t i = 0; i < batch.size(); ++i) {
          auto d = one(*ref, batch[i]);
          INFO("round " << round << ", check " << i);
          REQUIRE(d.accepted == (*r)[i].accepted);
          if (!cache) {
            CHECK(d.reason_code == (*r)[i].reason_code);
            CHECK(d.retry_after == (*r)[i].retry_after);
          }
        }
      }
      // Both stores hold the same counters.
      for (uint64_t p = 1; p <= 3; ++p)
        CHECK(*f.b->get_usage({7, p, 0, "error"},
                              quota("p", quota_scope::project, 25, 3600))
              == *ref->get_usage({7, p, 0, "error"},
                                 quota("p", quota_scope::project, 25, 3600)));
      f.now->fetch_add(4000); // the next case starts in fresh windows
    }
  }
}

TEST_CASE("a real 2 s window rolls over, shifted per organization",
          "[quota][contract][slow]") {
  // The system clock, as in production: Redis expires the counters by it.
  // Org 10 (shift 0) and org 11 (shift 1) have windows that end one second
  // apart; each is full until its own window ends, then takes the limit
  // again.
  std::vector<std::unique_ptr<quota_backend>> stores;
  quota_backend_options opts;
  opts.url = "memory://quota-real-window";
  stores.push_back(make_memory_quota_backend(opts));
  auto url = redis_url(18);
  std::optional<redis_connection> conn;
  if (!url.empty()) {
    auto c = redis_connection::connect(*parse_redis_url(url),
                                       std::chrono::seconds{2});
    REQUIRE(c);
    conn.emplace(std::move(*c));
    REQUIRE(conn->command({"FLUSHDB"}));
    opts.backend = "redis";
    opts.url = url;
    auto b = make_redis_quota_backend(opts);
    REQUIRE(b);
    stores.push_back(std::move(*b));
  }
  auto q = quota("o", quota_scope::organization, 3, 2);
  using std::chrono::system_clock;
  auto sleep_until_unix = [](double t) {
    std::this_thread::sleep_until(
      system_clock::time_point{std::chrono::duration_cast<system_clock::duration>(
        std::chrono::duration<double>{t})});
  };
  auto real_now = [] {
    return std::chrono::duration<double>(
             system_clock::now().time_since_epoch())
      .count();
  };
  // Start just after an even second: org 10's window (shift 0) began now,
  // org 11's (shift 1) ends in about one second.
  auto t0 = std::floor(real_now());
  if (int64_t(t0) % 2 == 1)
    t0 += 1;
  else
    t0 += 2;
  sleep_until_unix(t0 + 0.05);
  for (auto& b : stores) {
    INFO(b->describe());
    for (uint64_t org : {10, 11}) {
      auto c = check(org, 1, 0, {q}, 1);
      std::vector<quota_check> batch(5, c);
      auto r = b->check_batch(batch);
      REQUIRE(r);
      CHECK(accepted(*r) == 3);
      CHECK((*r)[4].reason_code == "o_quota");
      // retry_after: seconds to the end of this org's window.
      auto w = make_quota_window(q, org, int64_t(t0));
      CHECK((*r)[4].retry_after == w.expiry - int64_t(t0));
    }
  }
  if (conn) {
    // Relay's keys: org quota, no subscope, slot (now - shift) / window.
    auto slot10 = make_quota_window(q, 10, int64_t(t0)).slot;
    auto slot11 = make_quota_window(q, 11, int64_t(t0)).slot;
    CHECK(conn->command({"GET", "quota:o{10}:" + std::to_string(slot10)})
            ->as_string()
          == "3");
    CHECK(conn->command({"GET", "quota:o{11}:" + std::to_string(slot11)})
            ->as_string()
          == "3");
  }
  // t0 + 1: org 11's window ended, org 10's has a second to go.
  sleep_until_unix(t0 + 1.1);
  for (auto& b : stores) {
    INFO(b->describe());
    auto r10 = b->check_batch({check(10, 1, 0, {q}, 1)});
    auto r11 = b->check_batch({check(11, 1, 0, {q}, 1)});
    REQUIRE(r10);
    REQUIRE(r11);
    CHECK_FALSE(r10->front().accepted);
    CHECK(r10->front().retry_after == 1);
    CHECK(r11->front().accepted);
  }
  // t0 + 2: org 10's window ended too; each takes the rest of its limit.
  sleep_until_unix(t0 + 2.1);
  for (auto& b : stores) {
    INFO(b->describe());
    std::vector<quota_check> batch(4, check(10, 1, 0, {q}, 1));
    auto r10 = b->check_batch(batch);
    REQUIRE(r10);
    CHECK(accepted(*r10) == 3);
    batch.assign(4, check(11, 1, 0, {q}, 1));
    auto r11 = b->check_batch(batch);
    REQUIRE(r11);
    CHECK(accepted(*r11) == 2); // one was taken at t0 + 1
  }
}
