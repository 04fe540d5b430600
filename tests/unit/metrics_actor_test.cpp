// The metrics actor on CAF's deterministic scheduler: each tick hands the
// collected points to the backend and polls the directory; an actor that
// answers becomes gauges at the next emission, one that does not is left
// out once the status timeout passes (time advanced, never slept).

#include <catch2/catch.hpp>

#include <caf/all.hpp>

#include "actors/metrics.hpp"
#include "actors/metrics_service.hpp"
#include "tests/unit/deterministic_config.hpp"

using namespace vigil;
using vigil::testing::deterministic_fixture;

namespace {

/// Keeps what the actor emitted.
struct capture_backend : metrics_backend {
  std::shared_ptr<std::vector<std::vector<metric_point>>> emits
    = std::make_shared<std::vector<std::vector<metric_point>>>();
  std::string describe() const override {
    return "capture";
  }
  void emit(const std::vector<metric_point>& points, double) override {
    emits->push_back(points);
  }
};

caf::behavior answering(caf::event_based_actor*) {
  return {[](status_atom) {
    actor_status st;
    st.name = "test.answering";
    st.processed = 7;
    return st;
  }};
}

/// Holds every status request unanswered.
caf::behavior silent(caf::stateful_actor<
                     std::vector<caf::response_promise>>* self) {
  return {[self](status_atom) {
    self->state.push_back(self->make_response_promise());
    return self->state.back();
  }};
}

const metric_point* gauge_of(const std::vector<metric_point>& xs,
                             std::string_view key, std::string_view actor) {
  for (auto& p : xs)
    if (p.key == key && !p.tags.empty() && p.tags[0].second == actor)
      return &p;
  return nullptr;
}

} // namespace

TEST_CASE_METHOD(deterministic_fixture,
                 "the metrics actor emits each interval and turns the "
                 "directory's answers into gauges",
                 "[metrics][actor]") {
  auto directory = std::make_shared<actor_directory>();
  directory->add("test", sys.spawn(answering));
  directory->add("test", sys.spawn(silent));
  auto backend = std::make_shared<capture_backend>();
  auto emits = backend->emits;
  metrics_service_options mo;
  mo.config.backend = "statsd"; // any but dummy: recording and ticks on
  mo.config.interval = 1;
  mo.directory = directory;
  mo.backend = backend;
  auto actor = sys.spawn(metrics_service, mo);
  sched.run(); // starts recording; the first tick: emit, ask both actors
  REQUIRE(emits->size() == 1);
  metrics::incr("test.actor.counter", 3);
  // The silent one times out; the round is complete and recorded.
  sched.clock().advance_time(std::chrono::milliseconds{500});
  sched.run();
  self->send(actor, flush_atom_v);
  sched.run();
  self->receive([](bool ok) { CHECK(ok); });
  REQUIRE(emits->size() == 2);
  auto& points = emits->back();
  auto processed = gauge_of(points, "actors.processed", "test.answering");
  REQUIRE(processed);
  CHECK(processed->value == 7);
  CHECK(processed->tags
        == metric_tags{{"actor", "test.answering"}, {"service", "test"}});
  CHECK(gauge_of(points, "actors.mailbox_size", "test.answering"));
  self->send(actor, status_atom_v);
  sched.run();
  self->receive([](actor_status& st) {
    CHECK(st.name == "metrics.actor");
    CHECK(st.extra["status not answered"] == "1");
    CHECK(st.extra["backend"] == "capture");
  });
  bool counted = false;
  for (auto& batch : *emits)
    for (auto& p : batch)
      counted = counted || (p.key == "test.actor.counter" && p.value == 3);
  CHECK(counted);
  metrics::configure(false);
  self->send_exit(actor, caf::exit_reason::kill);
  for (auto& e : directory->entries())
    self->send_exit(e.handle, caf::exit_reason::kill);
  sched.run();
}
