// One contract for every quota backend: the same cases run against the
// in-process store and a real redis-server (VIGIL_TEST_REDIS_URL, started by
// tests/run_all.py). Time is a settable clock that starts at the real time
// (Redis expires keys by the real clock) and only moves forward.

#include <catch2/catch.hpp>

#include <atomic>
#include <cstdlib>

#include <hiredis/hiredis.h>

#include "actors/backends/quota.hpp"
#include "runtime/adapters/redis.hpp"

using namespace vigil;

namespace {

std::string redis_url(int db) {
  const char* base = std::getenv("VIGIL_TEST_REDIS_URL");
  if (base == nullptr)
    return {};
  std::string url = base;
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
  CHECK(reply_text(v->get()) == "3");
  auto okey = "quota:o{42}:" + std::to_string(w.slot);
  CHECK(reply_text(conn->command({"GET", okey})->get()) == "3");
  CHECK(reply_text(conn->command({"GET", "r:" + key})->get()) == "1");
  auto ttl = conn->command({"EXPIRETIME", key});
  if (ttl && (*ttl)->type == REDIS_REPLY_INTEGER)
    CHECK((*ttl)->integer == w.expiry + 60);
  auto pttl = conn->command({"TTL", key});
  REQUIRE(pttl);
  CHECK((*pttl)->integer > 60);
  CHECK((*pttl)->integer <= 120);
}
