// Host lookups with a timeout (adapters/resolve): what the Redis and
// AMQP adapters connect to, without a blocking getaddrinfo of unbounded
// length.

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <future>
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

/// A lookup that does not finish until the test opens its gate: whatever a
/// caller gets before that, it got without the lookup's answer. The wait is
/// bounded only so that a broken resolve_host cannot hang the run.
struct gated_lookup {
  std::promise<void> gate;
  std::shared_future<void> opened = gate.get_future().share();
  std::atomic<int> calls{0};
  std::atomic<int> finished{0};

  host_lookup fn(std::string address) {
    return [this, address](const std::string&) {
      ++calls;
      opened.wait_for(60s);
      ++finished;
      return caf::expected<std::vector<std::string>>{
        std::vector<std::string>{address}};
    };
  }
};

TEST_CASE("a lookup slower than the timeout fails with timeout",
          "[resolve]") {
  gated_lookup slow;
  auto out = resolve_host("slow.example", 100ms, slow.fn("10.0.0.4"));
  // The lookup is still held at its gate, so this answer is the timeout's.
  CHECK(slow.finished == 0);
  REQUIRE_FALSE(out);
  CHECK(out.error() == errc::timeout);
  CHECK(error_text(out.error()).find("slow.example") != std::string::npos);
  slow.gate.set_value();
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
  gated_lookup slow;
  auto lookup = slow.fn("10.0.0.5");
  // Both callers give up while the one lookup is held at its gate: the
  // second waited on the first's lookup instead of starting its own.
  CHECK_FALSE(resolve_host("shared.example", 50ms, lookup));
  CHECK_FALSE(resolve_host("shared.example", 50ms, lookup));
  // The lookup's thread may not have started yet on a busy machine: wait
  // until it has, then count.
  for (int i = 0; i < 6000 && slow.calls < 1; ++i)
    std::this_thread::sleep_for(10ms);
  CHECK(slow.calls == 1);
  // Once the gate opens, a caller that waits gets the answer.
  std::thread opener{[&] { slow.gate.set_value(); }};
  auto out = resolve_host("shared.example", 60s, lookup);
  opener.join();
  REQUIRE(out);
  CHECK(*out == std::vector<std::string>{"10.0.0.5"});
  // Once that lookup is done and forgotten, the next caller looks the host
  // up again (the lookup's thread forgets it just after answering).
  for (int i = 0; i < 6000 && slow.calls < 2; ++i) {
    CHECK(resolve_host("shared.example", 60s, lookup));
    if (slow.calls < 2)
      std::this_thread::sleep_for(10ms);
  }
  CHECK(slow.calls == 2);
}
