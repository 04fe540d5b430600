// Redis going away under the quota and rate limiter actors: a redis-server
// of the test's own (a free port; the harness's shared server is left
// alone) is killed, hung (SIGSTOP) and restarted while checks keep coming.
// Quotas follow quotas.fail-open (accept, or reject with retry_after 60 and
// "quota_unavailable"), the rate limiter fails open and counts it, every
// call is answered while Redis is away (by the Redis timeout), and both are
// exact again once Redis is back.

#include <catch2/catch.hpp>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <string>
#include <thread>

#include <fcntl.h>
#include <netinet/in.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <caf/all.hpp>

#include "actors/quota.hpp"
#include "actors/rate_limiter.hpp"
#include "adapters/redis.hpp"
#include "config/config.hpp"
#include "node/actor_system.hpp"
#include "tests/support/test_servers.hpp"

extern char** environ;

using namespace vigil;
using namespace std::chrono_literals;

namespace {

uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// A private redis-server on one port that can be killed, hung and started
// again on the same port.
class private_redis {
public:
  private_redis() : port_(free_port()) {
    dir_ = std::filesystem::temp_directory_path()
           / ("vigil-quota-outage-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }

  ~private_redis() {
    stop();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  std::string url() const {
    return "redis://127.0.0.1:" + std::to_string(port_) + "/0";
  }

  /// Starts the server and waits until it answers PING; false if
  /// redis-server is missing or does not come up.
  bool start() {
    auto port = std::to_string(port_);
    auto dir = dir_.string();
    const char* argv[] = {"redis-server", "--port", port.c_str(), "--bind",
                          "127.0.0.1", "--save", "", "--appendonly", "no",
                          "--dir", dir.c_str(), nullptr};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    auto rc = posix_spawnp(&pid_, "redis-server", &fa, nullptr,
                           const_cast<char**>(argv), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
      pid_ = -1;
      return false;
    }
    auto ep = parse_redis_url(url());
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < deadline) {
      if (auto conn = redis_connection::connect(*ep, 500ms))
        if (conn->command({"PING"}))
          return true;
      std::this_thread::sleep_for(50ms);
    }
    return false;
  }

  /// kill -9: the server vanishes mid-run.
  void kill() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }

  /// SIGSTOP / SIGCONT: the server accepts connections but answers nothing.
  void hang(bool on) {
    if (pid_ > 0)
      ::kill(pid_, on ? SIGSTOP : SIGCONT);
  }

  void stop() {
    if (pid_ > 0)
      ::kill(pid_, SIGCONT);
    kill();
  }

private:
  uint16_t port_;
  pid_t pid_ = -1;
  std::filesystem::path dir_;
};

quota_check key_check(uint64_t key, int64_t limit) {
  quota_config q;
  q.id = "k";
  q.scope = quota_scope::key;
  q.limit = limit;
  q.window = 3600;
  q.reason_code = "key_quota";
  quota_check c;
  c.scoping = {5, 6, key, "error"};
  c.quotas = {q};
  return c;
}

// The requests' 10 s bound only keeps a broken actor from hanging the run:
// what the cases assert is the answer (an answer while Redis is hung can
// only come from the actor's own timeout), never how long it took.
quota_decision ask(caf::scoped_actor& self, const quota_actor& q,
                   quota_check c) {
  quota_decision out;
  self->request(q, 10s, std::move(c))
    .receive([&](quota_decision& d) { out = std::move(d); },
             [&](caf::error& e) { FAIL("quota actor: " << to_string(e)); });
  return out;
}

rate_limit_result ask(caf::scoped_actor& self, const rate_limiter_actor& rl,
                      rate_limit_check c) {
  rate_limit_result out;
  self->request(rl, 10s, std::move(c))
    .receive([&](rate_limit_result& r) { out = r; },
             [&](caf::error& e) { FAIL("rate limiter: " << to_string(e)); });
  return out;
}

template <class Handle>
std::string status_figure(caf::scoped_actor& self, const Handle& h,
                          const std::string& name) {
  std::string out;
  self->request(h, 5s, status_atom_v)
    .receive(
      [&](actor_status& st) {
        auto i = st.extra.find(name);
        out = i == st.extra.end() ? "" : i->second;
      },
      [&](caf::error& e) { FAIL("status: " << to_string(e)); });
  return out;
}

// Retries until the store answers again (reconnects are throttled).
template <class F>
bool eventually(F&& f, std::chrono::seconds limit = 10s) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (f())
      return true;
    std::this_thread::sleep_for(100ms);
  }
  return false;
}

} // namespace

TEST_CASE("quotas.fail-open reaches the quota actor's options",
          "[quota][config]") {
  auto on = config::from_yaml("quotas: {backend: redis}\n"
                              "redis: {clusters: {default: {hosts: "
                              "[\"redis://127.0.0.1:6399/3\"]}}}\n",
                              {});
  REQUIRE(on);
  auto opts = make_quota_actor_options(*on);
  REQUIRE(opts);
  CHECK(opts->fail_open); // Relay's default
  CHECK(opts->backend.backend == "redis");
  CHECK(opts->backend.url == "redis://127.0.0.1:6399/3");
  auto off = config::from_yaml("quotas: {fail-open: false}\n", {});
  REQUIRE(off);
  opts = make_quota_actor_options(*off);
  REQUIRE(opts);
  CHECK_FALSE(opts->fail_open);
  CHECK(opts->backend.backend == "memory");
  auto rl = make_rate_limiter_options(*on);
  REQUIRE(rl);
  CHECK(rl->backend == "memory");
}

TEST_CASE("quotas and the rate limiter ride out a Redis outage",
          "[quota][rate_limiter][redis][faults]") {
  private_redis redis;
  if (!redis.start()) {
    vigil::testing::report_skipped("redis-server could not be started");
    return;
  }
  actor_system_config_ext cfg;
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};
  constexpr auto timeout = 500ms;
  quota_actor_options open_opts;
  open_opts.backend.backend = "redis";
  open_opts.backend.url = redis.url();
  open_opts.backend.timeout = timeout;
  auto closed_opts = open_opts;
  closed_opts.fail_open = false;
  auto open_q = sys.spawn<caf::detached>(quota_service, open_opts);
  auto closed_q = sys.spawn<caf::detached>(quota_service, closed_opts);
  rate_limiter_options rl_opts;
  rl_opts.backend = "redis";
  rl_opts.url = redis.url();
  rl_opts.timeout = timeout;
  auto rl = sys.spawn<caf::detached>(rate_limiter_service, rl_opts);
  // Before: exact.
  for (int i = 0; i < 3; ++i)
    CHECK(ask(self, open_q, key_check(1, 3)).accepted);
  auto d = ask(self, closed_q, key_check(1, 3));
  CHECK_FALSE(d.accepted);
  CHECK(d.reason_code == "key_quota");
  auto r = ask(self, rl, {"auth:ip:10.0.0.1", 2, 60, 0});
  CHECK_FALSE(r.limited);
  CHECK(r.count == 1);

  SECTION("killed, then restarted") {
    redis.kill();
    for (int i = 0; i < 5; ++i) {
      auto o = ask(self, open_q, key_check(2, 1));
      CHECK(o.accepted); // fail open: accepted even over the limit
      auto c = ask(self, closed_q, key_check(2, 1));
      CHECK_FALSE(c.accepted);
      CHECK(c.retry_after == 60);
      CHECK(c.reason_code == quota_unavailable_reason);
      r = ask(self, rl, {"auth:ip:10.0.0.1", 2, 60, 0});
      CHECK_FALSE(r.limited);
      CHECK(r.count == 0); // Sentry: (False, 0, reset_time)
      CHECK(r.reset_time % 60 == 0);
    }
    CHECK(std::stoul(status_figure(self, open_q, "failed_open")) >= 5);
    CHECK(std::stoul(status_figure(self, closed_q, "failed_open")) >= 5);
    CHECK(std::stoul(status_figure(self, rl, "failed_open")) >= 5);
    REQUIRE(redis.start()); // same port, empty store
    // Recovered: the counters start again from an empty store, exactly.
    CHECK(eventually([&] {
      return ask(self, closed_q, key_check(3, 2)).reason_code
             != quota_unavailable_reason;
    }));
    CHECK(ask(self, closed_q, key_check(3, 2)).accepted);
    d = ask(self, closed_q, key_check(3, 2));
    CHECK_FALSE(d.accepted);
    CHECK(d.reason_code == "key_quota");
    CHECK(eventually([&] {
      return ask(self, rl, {"auth:ip:10.0.0.2", 1, 60, 0}).count > 0;
    }));
    r = ask(self, rl, {"auth:ip:10.0.0.2", 1, 60, 0});
    CHECK(r.count == 2);
    CHECK(r.limited);
  }

  SECTION("hung (accepts connections, answers nothing), then back") {
    redis.hang(true);
    auto o = ask(self, open_q, key_check(4, 1));
    CHECK(o.accepted);
    auto c = ask(self, closed_q, key_check(4, 1));
    CHECK_FALSE(c.accepted);
    CHECK(c.reason_code == quota_unavailable_reason);
    r = ask(self, rl, {"auth:ip:10.0.0.3", 2, 60, 0});
    CHECK_FALSE(r.limited);
    redis.hang(false);
    // The data survived: the limit-3 quota of key 1 is still full.
    CHECK(eventually([&] {
      return ask(self, closed_q, key_check(1, 3)).reason_code == "key_quota";
    }));
    CHECK(ask(self, open_q, key_check(5, 1)).accepted);
    CHECK_FALSE(ask(self, open_q, key_check(5, 1)).accepted);
    CHECK(eventually([&] {
      return ask(self, rl, {"auth:ip:10.0.0.1", 2, 60, 0}).count >= 2;
    }));
  }
  caf::anon_send_exit(open_q, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(closed_q, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(rl, caf::exit_reason::user_shutdown);
}
