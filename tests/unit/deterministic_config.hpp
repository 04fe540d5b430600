#pragma once

// CAF's deterministic scheduler for actor tests: no threads, no sleeps; the
// test decides when messages are processed (`sched.run()`) and when time
// passes (`sched.clock().advance_time(...)`, which fires delayed messages
// and request timeouts). Actors under test are spawned without
// caf::detached, so that the test coordinator runs them.
//
// tests/unit/task_worker_test.cpp still has its own copy of this fixture
// (left alone while another change touches that file); it can include this
// header instead.

#include <caf/actor_system.hpp>
#include <caf/atom.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/scoped_actor.hpp>

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

} // namespace vigil::testing
