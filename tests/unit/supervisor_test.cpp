// The supervisor under the ingest, quota and rate-limiter actors: callers
// keep one handle across restarts, and the restarts are counted.

#include <catch2/catch.hpp>

#include <caf/all.hpp>

#include "actors/supervisor.hpp"
#include "messages/actor_status.hpp"
#include "messages/type_ids.hpp"
#include "node/actor_system.hpp"

using namespace vigil;

namespace {

// Answers an int with its successor, status with a fixed name, and fails on
// any string (an abnormal exit, as an escaped exception would cause).
caf::behavior flaky_child(caf::event_based_actor* self) {
  return {
    [](int x) { return x + 1; },
    [self](const std::string& why) {
      self->quit(caf::make_error(caf::sec::runtime_error, why));
    },
    [](status_atom) {
      actor_status s;
      s.name = "flaky";
      return s;
    },
  };
}

supervisor_options flaky_options() {
  supervisor_options opts;
  opts.child_name = "flaky";
  opts.min_backoff = std::chrono::milliseconds{10};
  opts.max_backoff = std::chrono::milliseconds{40};
  opts.spawn_child = [](caf::event_based_actor* parent) {
    return parent->spawn<caf::monitored>(flaky_child);
  };
  return opts;
}

// Asks until the child answers (it may still be waiting for its restart).
int ask_until_answered(caf::scoped_actor& self, const caf::actor& sup, int x) {
  for (int attempt = 0; attempt < 500; ++attempt) {
    int got = -1;
    self->request(sup, std::chrono::seconds{2}, x)
      .receive([&](int y) { got = y; }, [](caf::error&) {});
    if (got >= 0)
      return got;
    std::this_thread::sleep_for(std::chrono::milliseconds{10});
  }
  return -1;
}

} // namespace

TEST_CASE("a supervised actor is restarted behind the same handle",
          "[supervisor]") {
  actor_system_config_ext cfg;
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};
  auto sup = spawn_supervisor(sys, flaky_options());
  CHECK(ask_until_answered(self, sup, 1) == 2);
  for (int crash = 0; crash < 3; ++crash) {
    self->send(sup, std::string{"boom"});
    CHECK(ask_until_answered(self, sup, 10 + crash) == 11 + crash);
  }
  actor_status status;
  self->request(sup, std::chrono::seconds{2}, status_atom_v)
    .receive([&](actor_status& s) { status = s; },
             [](caf::error& err) { FAIL(caf::to_string(err)); });
  CHECK(status.name == "flaky");
  CHECK(status.restarts == 3);
  CHECK(status.last_error.find("boom") != std::string::npos);
  // Exiting the supervisor stops the child too, without a restart.
  self->send_exit(sup, caf::exit_reason::user_shutdown);
  self->wait_for(sup);
}
