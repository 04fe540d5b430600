// One contract for both rate-limiter backends (Sentry's RedisRateLimiter
// semantics): the in-process store and a real redis-server
// (VIGIL_TEST_REDIS_URL, started by tests/run_all.py).

#include <catch2/catch.hpp>

#include <atomic>
#include <cstdlib>

#include "actors/backends/rate_limiter.hpp"
#include "adapters/redis.hpp"
#include "tests/support/test_servers.hpp"

using namespace vigil;

namespace {

// A settable clock in Unix seconds, shared by a test and its backend.
struct test_clock {
  std::shared_ptr<std::atomic<int64_t>> now
    = std::make_shared<std::atomic<int64_t>>(1'795'400'000); // a bucket start
  std::function<int64_t()> fn() const {
    auto p = now;
    return [p] { return p->load(); };
  }
};

std::vector<rate_limiter_options> backends(const test_clock& clock) {
  static std::atomic<int> counter{0};
  int n = ++counter;
  std::vector<rate_limiter_options> out;
  rate_limiter_options mem;
  mem.backend = "memory";
  mem.url = "memory://rl-contract-" + std::to_string(n);
  mem.clock = clock.fn();
  out.push_back(mem);
  if (std::string url = vigil::testing::test_server_url("VIGIL_TEST_REDIS_URL");
      !url.empty()) {
    url = url.substr(0, url.rfind('/')) + "/42";
    auto ep = parse_redis_url(url);
    auto conn = redis_connection::connect(*ep, std::chrono::seconds{2});
    REQUIRE(conn);
    REQUIRE(conn->command({"FLUSHDB"}));
    rate_limiter_options redis;
    redis.backend = "redis";
    redis.url = url;
    redis.clock = clock.fn();
    out.push_back(redis);
  }
  return out;
}

} // namespace

TEST_CASE("rate limiters limit once the count exceeds the limit",
          "[rate_limiter][contract]") {
  test_clock clock;
  for (auto& opts : backends(clock)) {
    INFO("backend " << opts.backend);
    auto rl = make_rate_limiter_backend(opts);
    REQUIRE(rl);
    std::vector<rate_limit_check> checks(5, rate_limit_check{"user:7", 3, 60, 0});
    auto res = (*rl)->is_limited_batch(checks);
    REQUIRE(res);
    REQUIRE(res->size() == 5);
    for (size_t i = 0; i < 5; ++i) {
      CHECK((*res)[i].count == static_cast<int64_t>(i + 1));
      CHECK((*res)[i].limited == (i >= 3));
      CHECK((*res)[i].reset_time % 60 == 0);
      CHECK((*res)[i].reset_time > clock.now->load());
    }
    // Another key and the same key of another project count apart.
    auto other = (*rl)->is_limited_batch({{"user:8", 3, 60, 0},
                                          {"user:7", 3, 60, 42}});
    REQUIRE(other);
    CHECK((*other)[0].count == 1);
    CHECK((*other)[1].count == 1);
  }
}

TEST_CASE("rate limiters start a new count in the next window",
          "[rate_limiter][contract]") {
  test_clock clock;
  for (auto& opts : backends(clock)) {
    INFO("backend " << opts.backend);
    auto rl = make_rate_limiter_backend(opts);
    REQUIRE(rl);
    auto first = (*rl)->is_limited_batch({{"ip:1", 1, 10, 0}, {"ip:1", 1, 10, 0}});
    REQUIRE(first);
    CHECK_FALSE((*first)[0].limited);
    CHECK((*first)[1].limited);
    *clock.now += 10;
    auto next = (*rl)->is_limited_batch({{"ip:1", 1, 10, 0}});
    REQUIRE(next);
    CHECK_FALSE((*next)[0].limited);
    CHECK((*next)[0].count == 1);
  }
}

TEST_CASE("the redis rate limiter uses Sentry's key layout",
          "[rate_limiter][redis]") {
  test_clock clock;
  auto opts = backends(clock);
  if (opts.size() < 2)
    return;
  auto rl = make_rate_limiter_backend(opts[1]);
  REQUIRE(rl);
  REQUIRE((*rl)->is_limited_batch({{"k", 5, 60, 3}, {"k", 5, 60, 3}}));
  CHECK(md5_hex("k") == "8ce4b16b22b58894aa86c421e8759df3");
  auto bucket = clock.now->load() / 60;
  auto key = "rl:" + md5_hex("k") + ":3:" + std::to_string(bucket);
  auto conn = redis_connection::connect(*parse_redis_url(opts[1].url),
                                        std::chrono::seconds{2});
  REQUIRE(conn);
  auto value = conn->command({"GET", key});
  REQUIRE(value);
  CHECK(value->as_string() == "2");
  auto ttl = conn->command({"TTL", key});
  REQUIRE(ttl);
  CHECK(ttl->as_int() > 0);
}
