#pragma once

// CAF's deterministic scheduler for actor tests: no threads, no sleeps; the
// test decides when messages are processed (`sched.run()`) and when time
// passes (`sched.clock().advance_time(...)`, which fires delayed messages
// and request timeouts). Actors under test are spawned without
// caf::detached, so that the test coordinator runs them.

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/exit_reason.hpp>
#include <caf/atom.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/scoped_actor.hpp>

#include "actors/backends/broker.hpp"
#include "node/actor_system.hpp"

namespace vigil::testing {

/// An actor system on the test coordinator, with vigil's message types.
struct deterministic_fixture {
  actor_system_config_ext cfg;
  caf::actor_system sys;
  /// A hidden actor the test sends from and receives answers with.
  caf::scoped_actor self;
  caf::scheduler::test_coordinator& sched;

  static caf::actor_system_config& init(caf::actor_system_config& c) {
    c.set("scheduler.policy", caf::atom("testing"));
    c.set("logger.file-verbosity", caf::atom("quiet"));
    c.set("middleman.network-backend", caf::atom("testing"));
    c.set("middleman.manual-multiplexing", true);
    return c;
  }

  deterministic_fixture()
    : sys(init(cfg)),
      self(sys, true),
      sched(dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler())) {
    // nop
  }
};

/// The fixture with a memory:// broker of its own (`url`), a connection to
/// it the test inspects the queues with (`probe`), and the actors the test
/// spawned, stopped with `stop_reason` when the test ends: actors a failed
/// REQUIRE left running would keep the actor system (and the run) waiting
/// in its destructor.
struct broker_fixture : deterministic_fixture {
  std::string url;
  std::unique_ptr<broker> probe;
  std::vector<caf::actor> spawned;
  caf::exit_reason stop_reason;

  explicit broker_fixture(const std::string& name,
                          caf::exit_reason reason = caf::exit_reason::kill)
    : stop_reason(reason) {
    static std::atomic<int> n{0};
    url = "memory://" + name + "-" + std::to_string(++n);
    auto b = connect_broker(url, std::chrono::seconds{1});
    REQUIRE(b);
    probe = std::move(*b);
  }

  ~broker_fixture() {
    for (auto& x : spawned)
      self->send_exit(x, stop_reason);
    sched.run();
  }
};

} // namespace vigil::testing
