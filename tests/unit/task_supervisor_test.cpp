// The task supervisor on CAF's deterministic scheduler: its consumers and
// workers run as scheduled actors (consumer_options::spawn_detached off)
// on the in-process broker, the test kills one child and advances the
// clock past its backoff; nothing sleeps.

#include <catch2/catch.hpp>

#include <atomic>

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include "actors/backends/broker.hpp"
#include "actors/task_supervisor.hpp"
#include "messages/clock.hpp"
#include "messages/task_body.hpp"
#include "node/actor_system.hpp"
#include "tests/unit/deterministic_config.hpp"

using namespace vigil;
using std::chrono::milliseconds;

namespace {

struct supervisor_fixture : vigil::testing::broker_fixture {
  supervisor_fixture() : broker_fixture("supervisor-test", caf::exit_reason::user_shutdown) {
    // nop
  }

  consumer_options options() const {
    consumer_options o;
    o.broker_url = url;
    o.queues = {"q"};
    o.prefetch = 32;
    o.fetch_batch = 32;
    o.poll_interval = 0.01;
    o.restore_interval = 3600;
    o.spawn_detached = false;
    return o;
  }

  task_supervisor_actor spawn(size_t consumers, size_t concurrency) {
    auto sup = sys.spawn(task_supervisor, options(), consumers, concurrency,
                         default_task_registry());
    spawned.push_back(caf::actor_cast<caf::actor>(sup));
    sched.run();
    return sup;
  }

  // Runs what is due, then moves the clock on by `dt` and runs again.
  void advance(milliseconds dt) {
    sched.run();
    sched.clock().advance_time(dt);
    sched.run();
  }

  std::vector<caf::actor> children(const task_supervisor_actor& sup) {
    self->send(sup, caf::get_atom_v);
    sched.run();
    std::vector<caf::actor> out;
    self->receive([&](std::vector<caf::actor>& xs) { out = std::move(xs); },
                  caf::after(std::chrono::seconds{0}) >>
                    [] { FAIL("the supervisor did not answer get"); });
    return out;
  }

  std::vector<actor_status> statuses(const task_supervisor_actor& sup) {
    self->send(sup, status_atom_v);
    sched.run();
    std::vector<actor_status> out;
    self->receive([&](std::vector<actor_status>& xs) { out = std::move(xs); },
                  caf::after(std::chrono::seconds{0}) >>
                    [] { FAIL("the supervisor did not answer status"); });
    return out;
  }

  static const actor_status& status_of(const std::vector<actor_status>& xs,
                                       const caf::actor& who) {
    for (auto& x : xs)
      if (x.id == who.id())
        return x;
    FAIL("no status for actor " << who.id());
    return xs.front();
  }

  void publish(size_t n, int64_t eta_us = 0) {
    std::vector<outgoing_task> batch;
    for (size_t i = 0; i < n; ++i) {
      outgoing_task out;
      out.queue = "q";
      out.msg.task = "vigil.echo";
      out.msg.id = new_uuid4();
      out.msg.eta_us = eta_us;
      out.msg.body = encode_task_body({value{int64_t(i)}}, {},
                                      content_type_msgpack);
      batch.push_back(std::move(out));
    }
    REQUIRE_FALSE(probe->publish(batch));
  }

  // Advances the clock until the broker holds nothing (bounded).
  void run_until_empty() {
    for (int i = 0; i < 1000; ++i) {
      if (*probe->queue_length("q") == 0 && *probe->unacked_count() == 0)
        return;
      advance(milliseconds{10});
    }
    FAIL("the tasks were not all acknowledged");
  }

  void stop(const task_supervisor_actor& sup) {
    self->send_exit(sup, caf::exit_reason::user_shutdown);
    sched.run();
  }
};

caf::error crash() {
  return caf::make_error(caf::sec::runtime_error, "killed by the test");
}

} // namespace

TEST_CASE_METHOD(supervisor_fixture,
                 "the task supervisor restarts only the worker that died, "
                 "after its backoff, and its consumer uses the new one",
                 "[supervisor][actor]") {
  // Two consumers with two workers each: [c0, w00, w01, c1, w10, w11].
  auto sup = spawn(2, 4);
  auto before = children(sup);
  REQUIRE(before.size() == 6);
  for (auto& c : before)
    REQUIRE(c);
  self->send_exit(before[2], crash());
  sched.run();
  auto during = children(sup);
  CHECK_FALSE(during[2]); // waiting for its restart
  advance(milliseconds{100});
  auto after = children(sup);
  REQUIRE(after.size() == 6);
  REQUIRE(after[2]);
  CHECK(after[2] != before[2]);
  for (size_t k : {0, 1, 3, 4, 5})
    CHECK(after[k] == before[k]); // the others were left alone
  auto xs = statuses(sup);
  REQUIRE(xs.size() == 7);
  CHECK(xs[0].name == "tasks.supervisor");
  CHECK(xs[0].restarts == 1);
  CHECK(status_of(xs, after[2]).restarts == 1);
  for (size_t k : {0, 1, 3, 4, 5})
    CHECK(status_of(xs, after[k]).restarts == 0);
  auto& c0 = status_of(xs, after[0]);
  CHECK(c0.extra.at("workers") == "2");
  CHECK(c0.extra.at("worker_deaths") == "1");
  CHECK(status_of(xs, after[3]).extra.at("worker_deaths") == "0");
  publish(20);
  run_until_empty();
  stop(sup);
}

TEST_CASE_METHOD(supervisor_fixture,
                 "a restarted worker is put into its consumer's slot",
                 "[supervisor][actor]") {
  auto sup = spawn(1, 2); // [c0, w0, w1]
  auto before = children(sup);
  self->send_exit(before[2], crash());
  advance(milliseconds{100});
  auto after = children(sup);
  REQUIRE(after[2]);
  REQUIRE(after[2] != before[2]);
  // One fetch of four, split two and two over the workers.
  publish(4);
  run_until_empty();
  auto xs = statuses(sup);
  CHECK(status_of(xs, after[1]).processed == 2);
  CHECK(status_of(xs, after[2]).processed == 2);
  stop(sup);
}

TEST_CASE_METHOD(supervisor_fixture,
                 "each child backs off on its own, doubling while it keeps "
                 "failing",
                 "[supervisor][actor]") {
  auto sup = spawn(1, 2);
  auto first = children(sup);
  self->send_exit(first[1], crash());
  advance(milliseconds{100});
  auto second = children(sup);
  REQUIRE(second[1]);
  // Dies again at once: the next restart waits 200 ms.
  self->send_exit(second[1], crash());
  // The other worker fails for the first time: 100 ms for it.
  self->send_exit(second[2], crash());
  advance(milliseconds{100});
  auto third = children(sup);
  CHECK(third[2]);
  CHECK(third[2] != second[2]);
  CHECK_FALSE(third[1]);
  advance(milliseconds{100});
  auto fourth = children(sup);
  REQUIRE(fourth[1]);
  CHECK(fourth[0] == first[0]);
  auto xs = statuses(sup);
  CHECK(xs[0].restarts == 3);
  CHECK(status_of(xs, fourth[1]).restarts == 2);
  CHECK(status_of(xs, fourth[2]).restarts == 1);
  CHECK(status_of(xs, fourth[0]).extra.at("workers") == "2");
  stop(sup);
}

TEST_CASE_METHOD(supervisor_fixture,
                 "a restarted consumer gets its workers and gives back at "
                 "once what its predecessor held",
                 "[supervisor][actor]") {
  auto sup = spawn(1, 2); // [c0, w0, w1]
  // Held for its ETA, an hour away: unacknowledged while the consumer lives.
  publish(1, now_unix_us() + int64_t{3600} * 1000000);
  advance(milliseconds{10});
  REQUIRE(*probe->unacked_count() == 1);
  auto before = children(sup);
  self->send_exit(before[0], crash());
  sched.run();
  CHECK_FALSE(children(sup)[0]);
  advance(milliseconds{100});
  auto after = children(sup);
  REQUIRE(after[0]);
  CHECK(after[0] != before[0]);
  CHECK(after[1] == before[1]);
  CHECK(after[2] == before[2]);
  auto xs = statuses(sup);
  auto& c0 = status_of(xs, after[0]);
  CHECK(c0.restarts == 1);
  CHECK(c0.extra.at("workers") == "2");
  // Given back at once, then taken again by the new consumer.
  CHECK(c0.extra.at("given_back") == "1");
  CHECK(c0.extra.at("eta_held") == "1");
  CHECK(*probe->unacked_count() == 1);
  CHECK(status_of(xs, after[1]).restarts == 0);
  CHECK(status_of(xs, after[2]).restarts == 0);
  stop(sup);
}

TEST_CASE_METHOD(supervisor_fixture,
                 "a shut-down supervisor stops its children",
                 "[supervisor][actor]") {
  auto sup = spawn(1, 2);
  auto kids = children(sup);
  for (auto& k : kids)
    self->monitor(k);
  self->monitor(sup);
  stop(sup);
  size_t down = 0;
  for (size_t i = 0; i < kids.size() + 1; ++i)
    self->receive([&](caf::down_msg& dm) {
                    CHECK(dm.reason == caf::exit_reason::user_shutdown);
                    ++down;
                  },
                  caf::after(std::chrono::seconds{0}) >> [] {});
  CHECK(down == kids.size() + 1);
}
