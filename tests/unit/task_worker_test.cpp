// The task worker actor on CAF's deterministic scheduler: no threads, no
// sleeps; the test decides when messages are processed.

#include <catch2/catch.hpp>

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include "actors/task_rate_limits.hpp"
#include "actors/task_worker.hpp"
#include "messages/celery_events.hpp"
#include "messages/errors.hpp"
#include "messages/json_codec.hpp"
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
                 "in order", "[worker][actor][task_worker]") {
  auto worker = sys.spawn(task_worker, default_task_registry(),
                          std::string{"msgpack"}, worker_shared{});
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

TEST_CASE_METHOD(deterministic_fixture,
                 "a worker stops a task at its soft time limit and gives up "
                 "on one past its hard limit, then runs the next",
                 "[task_worker][actor]") {
  auto limits = std::make_shared<task_time_limits>();
  auto worker = sys.spawn(task_worker, default_task_registry(),
                          std::string{"msgpack"}, worker_shared{limits});
  sched.run();
  // vigil.sleep honours its soft limit; vigil.block ignores it and is cut
  // off at the hard limit (60 s of sleep against limits of 0.1 s).
  auto soft = make("vigil.sleep", {value{60}});
  soft.msg.soft_time_limit = 0.1;
  auto hard = make("vigil.block", {value{60}});
  hard.msg.time_limit = 0.2;
  hard.msg.soft_time_limit = 0.1;
  std::vector<delivery> batch{std::move(soft), std::move(hard),
                              make("vigil.echo", {value{"next"}})};
  self->send(worker, run_atom_v, std::move(batch));
  sched.run();
  std::vector<task_outcome> outcomes;
  self->receive([&](std::vector<task_outcome>& xs) { outcomes = std::move(xs); });
  REQUIRE(outcomes.size() == 3);
  CHECK(outcomes[0].what() == outcome_kind::dead_letter);
  auto doc = decode_msgpack(outcomes[0].result_doc);
  REQUIRE(doc);
  CHECK(doc->find("status")->as_text() == "FAILURE");
  CHECK(doc->find("result")->find("exc_type")->as_text()
        == "SoftTimeLimitExceeded");
  CHECK(doc->find("result")->find("exc_module")->as_text()
        == "billiard.exceptions");
  CHECK(outcomes[1].what() == outcome_kind::dead_letter);
  CHECK(outcomes[1].reason == "TimeLimitExceeded(0.2)");
  doc = decode_msgpack(outcomes[1].result_doc);
  REQUIRE(doc);
  CHECK(doc->find("result")->find("exc_type")->as_text()
        == "TimeLimitExceeded");
  CHECK(outcomes[2].what() == outcome_kind::success);
  CHECK(limits->soft_exceeded.load() == 1);
  CHECK(limits->hard_exceeded.load() == 1);
  self->send(worker, status_atom_v);
  sched.run();
  self->receive([&](actor_status& st) {
    CHECK(st.extra["soft_time_limits_exceeded"] == "1");
    CHECK(st.extra["hard_time_limits_exceeded"] == "1");
    CHECK(st.extra["threads_abandoned"] == "1");
  });
  self->send_exit(worker, caf::exit_reason::user_shutdown);
  sched.run();
}

TEST_CASE("per-task time limits: the message's first, then the time_limit "
          "command's, then the schema's", "[task_worker]") {
  task_time_limits limits;
  task_schema schema;
  schema.soft_time_limit = 5;
  schema.time_limit = 10;
  task_message msg;
  msg.task = "t";
  auto l = limits.effective(msg, schema);
  CHECK(l.soft == 5);
  CHECK(l.hard == 10);
  limits.set("t", {1, 2});
  l = limits.effective(msg, schema);
  CHECK(l.soft == 1);
  CHECK(l.hard == 2);
  msg.time_limit = 30;
  l = limits.effective(msg, schema);
  CHECK(l.soft == 1);
  CHECK(l.hard == 30);
  limits.set("t", {0, 0});
  msg.time_limit = 0;
  CHECK(limits.effective(msg, schema).hard == 10);
}

TEST_CASE("Celery's rate strings and the per-task token bucket",
          "[task_worker][rate_limit]") {
  CHECK(*parse_celery_rate(value{"10/s"}) == 10);
  CHECK(*parse_celery_rate(value{"120/m"}) == 2);
  CHECK(*parse_celery_rate(value{"3600/h"}) == 1);
  CHECK(*parse_celery_rate(value{"5"}) == 5);
  CHECK(*parse_celery_rate(value{int64_t{7}}) == 7);
  CHECK(*parse_celery_rate(value{"0"}) == 0);
  CHECK(*parse_celery_rate(value{""}) == 0);
  CHECK(*parse_celery_rate(value{}) == 0);
  auto bad = parse_celery_rate(value{"abc/s"});
  REQUIRE(!bad);
  CHECK(error_text(bad.error())
        == "ValueError(\"could not convert string to float: 'abc'\")");
  CHECK(!parse_celery_rate(value{"1/x"}));
  task_rate_limits limits;
  CHECK(limits.reserve("t", 1'000'000) == 0);
  limits.set("t", 2); // a token every 0.5 s, capacity 1
  CHECK(limits.reserve("t", 1'000'000) == 0);
  CHECK(limits.reserve("t", 1'000'000) == 500'000);
  CHECK(limits.reserve("t", 1'000'000) == 1'000'000);
  CHECK(limits.reserve("other", 1'000'000) == 0);
  // Idle for long: no burst, one token at once, the next after 0.5 s.
  CHECK(limits.reserve("t", 60'000'000) == 0);
  CHECK(limits.reserve("t", 60'000'000) == 500'000);
  CHECK(limits.delayed.load() == 3);
  limits.set("t", 0);
  CHECK(limits.reserve("t", 60'000'000) == 0);
}

TEST_CASE("task events are batched as a Celery worker batches them: lists "
          "of at most 24, each event complete", "[task_worker][events]") {
  task_message msg;
  msg.id = "id-1";
  msg.task = "vigil.echo";
  msg.argsrepr = "['x']";
  msg.kwargsrepr = "{}";
  std::vector<task_event> events;
  for (int i = 0; i < 25; ++i)
    events.push_back(i % 2 == 0 ? task_received_event(msg)
                                : task_succeeded_event(msg, "'x'", 0.001));
  int64_t clock = 10;
  auto lists = celery_event_lists(events, "vigil@test", clock);
  REQUIRE(lists.size() == 2);
  CHECK(clock == 35);
  auto first = decode_json(lists[0]);
  REQUIRE(first);
  REQUIRE(first->as_array().size() == 24);
  auto& ev = first->as_array()[0];
  CHECK(ev.find("type")->as_text() == "task-received");
  CHECK(ev.find("uuid")->as_text() == "id-1");
  CHECK(ev.find("name")->as_text() == "vigil.echo");
  CHECK(ev.find("args")->as_text() == "['x']");
  CHECK(ev.find("root_id")->as_text() == "id-1");
  CHECK(ev.find("parent_id")->is_nil());
  CHECK(ev.find("eta")->is_nil());
  CHECK(ev.find("hostname")->as_text() == "vigil@test");
  CHECK(ev.find("clock")->as_int() == 11);
  for (auto key : {"timestamp", "utcoffset", "pid", "retries", "kwargs",
                   "expires"})
    CHECK(ev.find(key) != nullptr);
  auto& ok = first->as_array()[1];
  CHECK(ok.find("type")->as_text() == "task-succeeded");
  CHECK(ok.find("result")->as_text() == "'x'");
  CHECK(ok.find("runtime")->is_number());
  CHECK(decode_json(lists[1])->as_array().size() == 1);
  CHECK(exception_repr("KeyError", "nope") == "KeyError('nope')");
}

TEST_CASE("a terminated task is announced as Celery's Request.terminate "
          "does", "[task_worker][events]") {
  task_message msg;
  msg.id = "id-k";
  msg.task = "vigil.block";
  int64_t clock = 0;
  std::vector<task_event> events{task_terminated_event(msg, 9),
                                 task_revoked_event(msg, true)};
  auto lists = celery_event_lists(events, "vigil@test", clock);
  REQUIRE(lists.size() == 1);
  auto evs = decode_json(lists[0]);
  REQUIRE(evs);
  auto& killed = evs->as_array()[0];
  CHECK(killed.find("type")->as_text() == "task-revoked");
  CHECK(killed.find("terminated")->as_bool());
  CHECK(killed.find("signum")->as_int() == 9);
  CHECK(!killed.find("expired")->as_bool());
  auto& expired = evs->as_array()[1];
  CHECK(!expired.find("terminated")->as_bool());
  CHECK(expired.find("signum")->is_nil());
  CHECK(expired.find("expired")->as_bool());
}

TEST_CASE("an event message's Redis envelope is kombu's, as encode_json "
          "spells it, whatever its body holds", "[task_worker][events]") {
  // The envelope is written directly (its body escaped in one pass); it
  // must read as the value map encode_json would write, byte for byte but
  // the delivery tag (a fresh uuid each).
  for (std::string body :
       {std::string{R"([{"uuid":"a","result":"'x\\y'"}])"},
        std::string{"[{\"exception\":\"KeyError('n\xc3\xa9')\"}]"},
        std::string{"[\"tab\\tand\x01 raw\"]"}, std::string{"\xff\xfe"},
        std::string{}}) {
    auto env = encode_celery_event_envelope("task.multi", body, "vigil@h\"1");
    auto got = decode_json(env);
    REQUIRE(got);
    CHECK(got->find("body")->as_text()
          == decode_json(encode_json(value{body}))->as_text());
    auto tag = got->find("properties")->find("delivery_tag")->as_text();
    CHECK(tag.size() == 36);
    value_map headers;
    headers.emplace_back("hostname", "vigil@h\"1");
    value_map info;
    info.emplace_back("exchange", "celeryev");
    info.emplace_back("routing_key", "task.multi");
    value_map props;
    props.emplace_back("delivery_mode", 1);
    props.emplace_back("delivery_info", std::move(info));
    props.emplace_back("priority", 0);
    props.emplace_back("delivery_tag", tag);
    value_map want;
    want.emplace_back("body", body);
    want.emplace_back("content-encoding", "utf-8");
    want.emplace_back("content-type", "application/json");
    want.emplace_back("headers", std::move(headers));
    want.emplace_back("properties", std::move(props));
    CHECK(env == encode_json(value{std::move(want)}));
  }
}
