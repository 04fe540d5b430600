// The task worker actor on CAF's deterministic scheduler: no threads, no
// sleeps; the test decides when messages are processed.

#include <catch2/catch.hpp>

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include "actors/task_worker.hpp"
#include "messages/msgpack_codec.hpp"
#include "messages/task_body.hpp"
#include "node/actor_system.hpp"
#include "tests/unit/deterministic_config.hpp"

using namespace vigil;

namespace {

using vigil::testing::deterministic_fixture;

delivery make(std::string task, value_array args, int32_t retries = 0) {
  delivery d;
  d.msg.task = std::move(task);
  d.msg.id = "id-" + std::to_string(retries);
  d.msg.retries = retries;
  d.msg.body = encode_task_body(args, {}, content_type_msgpack);
  d.tag = "tag";
  d.queue = "celery";
  return d;
}

} // namespace

TEST_CASE_METHOD(deterministic_fixture,
                 "a worker answers a batch with one outcome per delivery, "
                 "in order", "[worker][actor]") {
  auto worker = sys.spawn(task_worker, default_task_registry(),
                          std::string{"msgpack"});
  sched.run();
  std::vector<delivery> batch{make("vigil.echo", {value{"a"}}),
                              make("vigil.flaky", {value{1}}, 0),
                              make("vigil.flaky", {value{1}}, 1),
                              make("vigil.sleep", {value{"x"}})};
  self->send(worker, run_atom_v, std::move(batch));
  sched.run();
  std::vector<task_outcome> outcomes;
  self->receive([&](std::vector<task_outcome>& xs) { outcomes = std::move(xs); });
  REQUIRE(outcomes.size() == 4);
  CHECK(outcomes[0].what() == outcome_kind::success);
  CHECK(decode_msgpack(outcomes[0].result_doc)->find("result")->as_text()
        == "a");
  // flaky(1): the first attempt asks for a retry, the second succeeds.
  CHECK(outcomes[1].what() == outcome_kind::retry);
  CHECK(outcomes[2].what() == outcome_kind::success);
  CHECK(outcomes[3].what() == outcome_kind::dead_letter);
  CHECK(outcomes[3].reason.find("seconds") != std::string::npos);
  self->send(worker, status_atom_v);
  sched.run();
  self->receive([&](actor_status& st) {
    CHECK(st.name == "tasks.worker");
    CHECK(st.processed == 4);
    CHECK(st.extra["dead_lettered"] == "1");
    CHECK(st.extra["retried"] == "1");
  });
  self->send_exit(worker, caf::exit_reason::user_shutdown);
  sched.run();
}
