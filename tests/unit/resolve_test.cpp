// Host lookups with a timeout (adapters/resolve): what the Redis and
// AMQP adapters connect to, without a blocking getaddrinfo of unbounded
// length.

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <thread>

#include "adapters/resolve.hpp"
#include "messages/errors.hpp"

using namespace vigil;
using namespace std::chrono_literals;

TEST_CASE("a numeric host needs no lookup", "[resolve]") {
  std::atomic<int> calls{0};
  host_lookup counting = [&](const std::string&) {
    ++calls;
    return caf::expected<std::vector<std::string>>{
      std::vector<std::string>{"10.0.0.1"}};
  };
  for (auto host : {"127.0.0.1", "::1", "fe80::1"}) {
    auto out = resolve_host(host, 100ms, counting);
    REQUIRE(out);
    CHECK(*out == std::vector<std::string>{host});
  }
  CHECK(calls == 0);
}

TEST_CASE("a name is looked up and its addresses come back in order",
          "[resolve]") {
  host_lookup two = [](const std::string& host) {
    CHECK(host == "redis.internal");
    return caf::expected<std::vector<std::string>>{
      std::vector<std::string>{"10.0.0.2", "10.0.0.3"}};
  };
  auto out = resolve_host("redis.internal", 1000ms, two);
  REQUIRE(out);
  CHECK(*out == std::vector<std::string>{"10.0.0.2", "10.0.0.3"});
}

TEST_CASE("a lookup slower than the timeout fails with timeout, promptly",
          "[resolve]") {
  host_lookup slow = [](const std::string&) {
    std::this_thread::sleep_for(2s);
    return caf::expected<std::vector<std::string>>{
      std::vector<std::string>{"10.0.0.4"}};
  };
  auto start = std::chrono::steady_clock::now();
  auto out = resolve_host("slow.example", 100ms, slow);
  auto took = std::chrono::steady_clock::now() - start;
  REQUIRE_FALSE(out);
  CHECK(out.error() == errc::timeout);
  CHECK(error_text(out.error()).find("slow.example") != std::string::npos);
  CHECK(took < 1s);
}

TEST_CASE("a failed lookup says which host", "[resolve]") {
  host_lookup failing = [](const std::string& host) {
    return caf::expected<std::vector<std::string>>{
      caf::make_error(errc::connection_failed,
                      "cannot resolve host '" + host + "': unknown")};
  };
  auto out = resolve_host("nowhere.invalid", 1000ms, failing);
  REQUIRE_FALSE(out);
  CHECK(out.error() == errc::connection_failed);
  CHECK(error_text(out.error()).find("nowhere.invalid") != std::string::npos);
  CHECK_FALSE(resolve_host("", 1000ms, failing));
  host_lookup none = [](const std::string&) {
    return caf::expected<std::vector<std::string>>{std::vector<std::string>{}};
  };
  CHECK_FALSE(resolve_host("empty.example", 1000ms, none));
}

TEST_CASE("the system resolver finds localhost", "[resolve]") {
  auto out = resolve_host("localhost", 5000ms);
  REQUIRE(out);
  REQUIRE_FALSE(out->empty());
  for (const auto& a : *out)
    CHECK((a == "127.0.0.1" || a == "::1"));
}

TEST_CASE("callers of one host share the lookup that is running",
          "[resolve]") {
  std::atomic<int> calls{0};
  host_lookup slow = [&](const std::string&) {
    ++calls;
    std::this_thread::sleep_for(300ms);
    return caf::expected<std::vector<std::string>>{
      std::vector<std::string>{"10.0.0.5"}};
  };
  std::vector<std::thread> callers;
  std::atomic<int> answered{0};
  for (int i = 0; i < 3; ++i)
    callers.emplace_back([&] {
      auto out = resolve_host("shared.example", 5s, slow);
      if (out && *out == std::vector<std::string>{"10.0.0.5"})
        ++answered;
    });
  for (auto& t : callers)
    t.join();
  CHECK(answered == 3);
  CHECK(calls == 1);
  // Once it is done, the next caller looks the host up again.
  CHECK(resolve_host("shared.example", 5s, slow));
  CHECK(calls == 2);
}
