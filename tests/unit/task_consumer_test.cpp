// The task consumer on CAF's deterministic scheduler, with stand-in
// workers the test controls: what a dead worker held goes back to the
// broker at once, a redelivered message runs alone and is counted before it
// runs, and one whose workers kept dying is dead-lettered.

#include <catch2/catch.hpp>

#include <atomic>

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include "actors/backends/broker.hpp"
#include "actors/task_consumer.hpp"
#include "messages/clock.hpp"
#include "messages/kombu_envelope.hpp"
#include "messages/task_body.hpp"
#include "node/actor_system.hpp"
#include "tests/unit/deterministic_config.hpp"

using namespace vigil;

namespace {

/// What a stand-in worker was given; it answers at once unless `hold`.
struct worker_log {
  bool hold = false;
  std::vector<std::vector<delivery>> batches;
};

task_worker_actor::behavior_type
stand_in_worker(task_worker_actor::pointer self,
                std::shared_ptr<worker_log> log) {
  return {
    [=](run_atom, std::vector<delivery>& batch)
      -> caf::result<std::vector<task_outcome>> {
      log->batches.push_back(batch);
      if (log->hold)
        return self->make_response_promise<std::vector<task_outcome>>();
      std::vector<task_outcome> out;
      for (auto& d : batch) {
        task_outcome o;
        o.d = d;
        o.kind = static_cast<uint8_t>(outcome_kind::success);
        out.push_back(std::move(o));
      }
      return out;
    },
    [=](status_atom) {
      actor_status s;
      s.name = "test.worker";
      return s;
    },
  };
}

struct consumer_fixture : vigil::testing::broker_fixture {
  consumer_fixture() : broker_fixture("consumer-test", caf::exit_reason::kill) {
    // nop
  }

  template <class... Ts>
  auto spawn(Ts&&... xs) {
    auto h = sys.spawn(std::forward<Ts>(xs)...);
    spawned.push_back(caf::actor_cast<caf::actor>(h));
    return h;
  }

  consumer_options options(uint32_t max_deliveries = 5) const {
    consumer_options o;
    o.broker_url = url;
    o.queues = {"q"};
    o.prefetch = 32;
    o.fetch_batch = 32;
    o.restore_interval = 3600;
    o.max_deliveries = max_deliveries;
    return o;
  }

  // Publishes one task; returns its id.
  std::string publish() {
    outgoing_task out;
    out.queue = "q";
    out.msg.task = "vigil.echo";
    out.msg.id = new_uuid4();
    out.msg.body = encode_task_body({value{"x"}}, {}, content_type_msgpack);
    REQUIRE_FALSE(probe->publish({out}));
    return out.msg.id;
  }

  // Takes every waiting message with the probe connection.
  std::vector<raw_delivery> take() {
    std::vector<raw_delivery> got;
    REQUIRE_FALSE(probe->fetch({"q"}, 100, got));
    return got;
  }

  // Publishes a task and lets it fail `n` deliveries, as a worker dying
  // with it each time would: the first counted when it is given back, the
  // others before each later run. Leaves it waiting in the queue.
  std::string publish_failed(uint32_t n) {
    auto id = publish();
    auto got = take();
    REQUIRE(got.size() == 1);
    for (uint32_t i = 1; i < n; ++i) {
      REQUIRE(*probe->restore_unacked({got[0].tag}) == 1);
      got = take();
      REQUIRE(got.size() == 1);
      REQUIRE(got[0].failed_deliveries == i);
      REQUIRE(*probe->count_delivery(got[0].tag) == i + 1);
    }
    REQUIRE(*probe->restore_unacked({got[0].tag}) == 1);
    return id;
  }

  actor_status status(const task_consumer_actor& c) {
    self->send(c, status_atom_v);
    sched.run();
    actor_status out;
    self->receive([&](actor_status& x) { out = std::move(x); },
                  caf::after(std::chrono::seconds{0}) >>
                    [] { FAIL("the consumer did not answer status"); });
    return out;
  }

  void stop(const caf::actor& x) {
    self->send_exit(x, caf::exit_reason::user_shutdown);
    sched.run();
  }
};

std::string id_of(const raw_delivery& raw) {
  auto d = decode_kombu_envelope(raw.envelope);
  REQUIRE(d);
  return d->msg.id;
}

caf::error crash() {
  return caf::make_error(caf::sec::runtime_error, "killed by the test");
}

} // namespace

TEST_CASE_METHOD(consumer_fixture,
                 "a consumer gives back at once what a dead worker held, "
                 "counting a failed delivery for each",
                 "[consumer][actor]") {
  for (int i = 0; i < 3; ++i)
    publish();
  auto log = std::make_shared<worker_log>();
  log->hold = true;
  auto w = spawn(stand_in_worker, log);
  auto c = spawn(task_consumer, options(),
                     std::vector<task_worker_actor>{w}, nullptr);
  sched.run();
  REQUIRE(log->batches.size() == 1);
  REQUIRE(log->batches[0].size() == 3);
  REQUIRE(*probe->unacked_count() == 3);
  self->send_exit(w, crash());
  sched.run();
  // Back in the queue, not left for the visibility timeout; the consumer,
  // with no worker left, takes nothing.
  CHECK(*probe->unacked_count() == 0);
  CHECK(*probe->queue_length("q") == 3);
  auto st = status(c);
  CHECK(st.extra.at("given_back") == "3");
  CHECK(st.extra.at("worker_deaths") == "1");
  CHECK(st.extra.at("workers") == "0");
  auto again = take();
  REQUIRE(again.size() == 3);
  for (auto& raw : again) {
    CHECK(raw.failed_deliveries == 1);
    CHECK(decode_kombu_envelope(raw.envelope)->redelivered);
  }
  stop(caf::actor_cast<caf::actor>(c));
}

TEST_CASE_METHOD(consumer_fixture,
                 "a consumer takes work again once its worker is replaced",
                 "[consumer][actor]") {
  auto held = std::make_shared<worker_log>();
  held->hold = true;
  auto w = spawn(stand_in_worker, held);
  auto c = spawn(task_consumer, options(),
                     std::vector<task_worker_actor>{w}, nullptr);
  sched.run();
  self->send_exit(w, crash());
  sched.run();
  publish();
  auto log = std::make_shared<worker_log>();
  auto fresh = spawn(stand_in_worker, log);
  self->send(c, caf::put_atom_v, uint64_t{0}, fresh);
  sched.run();
  // Its next poll (at most the poll interval away) takes the message.
  sched.clock().advance_time(std::chrono::milliseconds{50});
  sched.run();
  REQUIRE(log->batches.size() == 1);
  CHECK(*probe->unacked_count() == 0);
  CHECK(*probe->queue_length("q") == 0);
  CHECK(status(c).extra.at("workers") == "1");
  stop(caf::actor_cast<caf::actor>(c));
  stop(caf::actor_cast<caf::actor>(fresh));
}

TEST_CASE_METHOD(consumer_fixture,
                 "a redelivered message runs alone, and is counted before it "
                 "runs",
                 "[consumer][actor]") {
  auto suspect = publish_failed(1);
  auto innocent = publish();
  auto log_a = std::make_shared<worker_log>();
  auto log_b = std::make_shared<worker_log>();
  log_a->hold = true;
  auto a = spawn(stand_in_worker, log_a);
  auto b = spawn(stand_in_worker, log_b);
  auto c = spawn(task_consumer, options(),
                     std::vector<task_worker_actor>{a, b}, nullptr);
  sched.run();
  // The suspect alone on the first idle worker, the rest on the other.
  REQUIRE(log_a->batches.size() == 1);
  REQUIRE(log_a->batches[0].size() == 1);
  CHECK(log_a->batches[0][0].msg.id == suspect);
  REQUIRE(log_b->batches.size() == 1);
  REQUIRE(log_b->batches[0].size() == 1);
  CHECK(log_b->batches[0][0].msg.id == innocent);
  CHECK(*probe->unacked_count() == 1); // the innocent one was acknowledged
  CHECK(status(c).extra.at("suspects_run") == "1");
  // Its worker dies: the count raised before it ran stands for this death.
  self->send_exit(a, crash());
  sched.run();
  auto again = take();
  REQUIRE(again.size() == 1);
  CHECK(id_of(again[0]) == suspect);
  CHECK(again[0].failed_deliveries == 2);
  stop(caf::actor_cast<caf::actor>(c));
  stop(caf::actor_cast<caf::actor>(b));
}

TEST_CASE_METHOD(consumer_fixture,
                 "while a suspect waits for an idle worker, the other "
                 "messages do not overtake it on that worker",
                 "[consumer][actor]") {
  // One worker, busy with a batch: the suspect that comes next must wait
  // until it is idle, and the messages behind it wait too.
  auto log = std::make_shared<worker_log>();
  log->hold = true;
  auto w = spawn(stand_in_worker, log);
  auto c = spawn(task_consumer, options(),
                     std::vector<task_worker_actor>{w}, nullptr);
  sched.run();
  publish();
  self->send(c, poll_atom_v);
  sched.run();
  REQUIRE(log->batches.size() == 1);
  auto suspect = publish_failed(1);
  publish();
  self->send(c, poll_atom_v);
  sched.run();
  CHECK(log->batches.size() == 1);
  auto st = status(c);
  CHECK(st.extra.at("suspects") == "1");
  CHECK(st.extra.at("held") == "3");
  stop(caf::actor_cast<caf::actor>(c));
  stop(caf::actor_cast<caf::actor>(w));
}

TEST_CASE_METHOD(consumer_fixture,
                 "a message whose worker died at each of max-deliveries "
                 "deliveries is dead-lettered; the others run",
                 "[consumer][actor]") {
  auto poison = publish_failed(3);
  auto innocent = publish();
  auto log = std::make_shared<worker_log>();
  auto w = spawn(stand_in_worker, log);
  auto c = spawn(task_consumer, options(3),
                     std::vector<task_worker_actor>{w}, nullptr);
  sched.run();
  REQUIRE(log->batches.size() == 1);
  REQUIRE(log->batches[0].size() == 1);
  CHECK(log->batches[0][0].msg.id == innocent);
  CHECK(*probe->unacked_count() == 0);
  CHECK(*probe->queue_length("q") == 0);
  auto dead = probe->list_dead_letters();
  REQUIRE(dead);
  REQUIRE(dead->size() == 1);
  CHECK(dead->at(0).task_id == poison);
  CHECK(dead->at(0).task == "vigil.echo");
  CHECK(dead->at(0).reason == "delivered 3 times, its worker died each time");
  CHECK(status(c).extra.at("poisoned") == "1");
  // Replayed, it starts counting afresh.
  REQUIRE(*probe->replay_dead_letters("") == 1);
  auto again = take();
  REQUIRE(again.size() == 1);
  CHECK(again[0].failed_deliveries == 0);
  stop(caf::actor_cast<caf::actor>(c));
  stop(caf::actor_cast<caf::actor>(w));
}

TEST_CASE_METHOD(consumer_fixture,
                 "max-deliveries 0 never dead-letters for deaths",
                 "[consumer][actor]") {
  auto id = publish_failed(7);
  auto log = std::make_shared<worker_log>();
  auto w = spawn(stand_in_worker, log);
  auto c = spawn(task_consumer, options(0),
                     std::vector<task_worker_actor>{w}, nullptr);
  sched.run();
  REQUIRE(log->batches.size() == 1);
  CHECK(log->batches[0][0].msg.id == id);
  CHECK(probe->list_dead_letters()->empty());
  stop(caf::actor_cast<caf::actor>(c));
  stop(caf::actor_cast<caf::actor>(w));
}
