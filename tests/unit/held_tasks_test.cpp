// The registries behind `inspect active/reserved/scheduled` and
// `revoke(terminate=True, signal=...)`: running_tasks, held_tasks, the
// bounded thread's aborter, and the remote control's answers built from
// them. No sleeps: a job that must block waits on a promise.

#include <catch2/catch.hpp>

#include <future>
#include <signal.h>

#include "actors/remote_control.hpp"
#include "actors/running_tasks.hpp"
#include "actors/task_time_limits.hpp"
#include "messages/clock.hpp"

using namespace vigil;

namespace {

delivery make(std::string id, std::string task = "vigil.echo") {
  delivery d;
  d.msg.id = std::move(id);
  d.msg.task = std::move(task);
  d.msg.argsrepr = "('x',)";
  d.msg.kwargsrepr = "{}";
  d.msg.priority = 3;
  d.queue = "celery";
  d.tag = "tag-" + d.msg.id;
  return d;
}

value ask(remote_control_state& st, std::string method, value args = value_map{}) {
  pidbox_request req;
  req.method = std::move(method);
  req.arguments = std::move(args);
  bool shutdown = false;
  auto reply = answer_pidbox(st, req, &shutdown);
  REQUIRE(reply);
  return *reply;
}

value revoke_args(std::string id, value sig) {
  value_map m;
  m.emplace_back("task_id", std::move(id));
  m.emplace_back("terminate", true);
  m.emplace_back("signal", std::move(sig));
  return value{std::move(m)};
}

} // namespace

TEST_CASE("running tasks: listed and their ids known while they run",
          "[running_tasks][held_tasks]") {
  running_tasks r;
  r.started(make("a"), std::make_shared<task_control>());
  CHECK(r.list().size() == 1);
  CHECK(r.ids().count("a") == 1);
  r.finished("a");
  CHECK(r.list().empty());
  CHECK(r.ids().empty());
  CHECK(r.terminate({"a"}).empty()); // ended: nothing to stop
}

TEST_CASE("running tasks: terminate sets the flag, kill calls the task's "
          "killer or reports it has none", "[running_tasks]") {
  running_tasks r;
  auto flagged = std::make_shared<task_control>();
  auto killed = std::make_shared<task_control>();
  int kills = 0;
  r.started(make("inline"), flagged);
  r.started(make("own-thread"), killed, [&] { ++kills; });
  std::vector<std::string> flag_only;
  auto hit = r.terminate({"inline", "own-thread", "nope"}, true, &flag_only);
  CHECK(hit.size() == 2);
  CHECK(kills == 1);
  CHECK(flag_only == std::vector<std::string>{"inline"});
  CHECK(flagged->cancelled());
  CHECK(killed->cancelled());
  // TERM: the flag only, the killer untouched.
  r.started(make("c"), std::make_shared<task_control>(), [&] { ++kills; });
  CHECK(r.terminate({"c"}).size() == 1);
  CHECK(kills == 1);
}

TEST_CASE("a bounded thread's aborter gives up its run at once, and only "
          "that run", "[time_limits][running_tasks]") {
  bounded_task_thread t;
  auto far = std::chrono::steady_clock::now() + std::chrono::hours{1};
  // A stale aborter (made for a run that finished) aborts nothing later.
  auto stale = t.aborter();
  CHECK(t.run([] {}, far));
  stale();
  CHECK(t.run([] {}, far));
  CHECK_FALSE(t.aborted());
  // An aborter called before its run: the run is given up at once, though
  // its job would block for an hour.
  auto release = std::make_shared<std::promise<void>>();
  auto released = release->get_future().share();
  auto kill = t.aborter();
  kill();
  CHECK_FALSE(t.run([released] { released.wait(); }, far));
  CHECK(t.aborted());
  CHECK(t.abandoned() == 1);
  release->set_value(); // the abandoned thread ends
  CHECK(t.run([] {}, far)); // a new thread for the next job
  CHECK_FALSE(t.aborted());
}

TEST_CASE("held tasks merge the consumers' answers, scheduled soonest "
          "first", "[held_tasks]") {
  held_tasks h;
  held_snapshot a;
  a.reserved.push_back(task_info_of(make("r1")));
  a.scheduled.push_back(task_info_of(make("s2")));
  a.scheduled.back().eta_us = 2000000;
  held_snapshot b;
  b.scheduled.push_back(task_info_of(make("s1")));
  b.scheduled.back().eta_us = 1000000;
  h.put(1, std::move(a));
  h.put(2, std::move(b));
  auto all = h.take();
  REQUIRE(all.reserved.size() == 1);
  REQUIRE(all.scheduled.size() == 2);
  CHECK(all.scheduled[0].id == "s1");
  CHECK(all.scheduled[1].id == "s2");
  CHECK(h.take().scheduled.empty()); // taken once
}

TEST_CASE("remote control: reserved and scheduled in Celery's shapes",
          "[remote_control][held_tasks]") {
  remote_control_state st;
  st.opts.hostname = "vigil@test";
  st.opts.running = std::make_shared<running_tasks>();
  held_snapshot snap;
  snap.reserved.push_back(task_info_of(make("r1")));
  snap.scheduled.push_back(task_info_of(make("s1")));
  snap.scheduled.back().eta_us = 1700000000000000;
  st.opts.running->held.put(1, snap);
  auto reserved = ask(st, "reserved");
  REQUIRE(reserved.is_array());
  REQUIRE(reserved.as_array().size() == 1);
  auto& info = reserved.as_array()[0];
  CHECK(info.find("id")->as_text() == "r1");
  CHECK(info.find("name")->as_text() == "vigil.echo");
  CHECK(info.find("args")->as_text() == "('x',)");
  CHECK(info.find("hostname")->as_text() == "vigil@test");
  CHECK(info.find("time_start")->is_nil());
  CHECK(info.find("worker_pid")->is_nil());
  CHECK(info.find("acknowledged")->as_bool() == false);
  CHECK(info.find("delivery_info")->find("routing_key")->as_text() == "celery");
  st.opts.running->held.put(1, snap);
  auto scheduled = ask(st, "scheduled");
  REQUIRE(scheduled.as_array().size() == 1);
  auto& entry = scheduled.as_array()[0];
  CHECK(entry.find("eta")->as_text() == format_iso8601(1700000000000000));
  CHECK(entry.find("priority")->as_int() == 3);
  CHECK(entry.find("request")->find("id")->as_text() == "s1");
  // Nothing held: empty lists.
  CHECK(ask(st, "reserved").as_array().empty());
}

TEST_CASE("remote control: revoke terminate reads the signal as Celery "
          "does", "[remote_control][running_tasks]") {
  remote_control_state st;
  st.opts.hostname = "vigil@test";
  st.opts.revoked = std::make_shared<revoked_set>(100, std::chrono::seconds{3600});
  st.opts.running = std::make_shared<running_tasks>();
  int kills = 0;
  auto control = std::make_shared<task_control>();
  st.opts.running->started(make("t"), control, [&] { ++kills; });
  auto err = [&](value sig) {
    auto r = ask(st, "revoke", revoke_args("t", std::move(sig)));
    auto* e = r.find("error");
    return e != nullptr ? e->as_text() : std::string{};
  };
  CHECK(err("NOSUCH")
        == "AttributeError(\"module 'signal' has no attribute 'SIGNOSUCH'\")");
  CHECK(err("kill") == "TypeError('signal name must be uppercase string.')");
  CHECK(err(value_array{}) == "TypeError('signal name must be uppercase string.')");
  CHECK(kills == 0);
  CHECK_FALSE(control->cancelled());
  CHECK(st.opts.revoked->contains("t")); // revoked before the signal is read
  // TERM (and the default): the flag only.
  CHECK(err("TERM").empty());
  CHECK(control->cancelled());
  CHECK(err(value{nullptr}).empty());
  CHECK(kills == 0);
  for (auto sig : {value{"KILL"}, value{"SIGKILL"}, value{int64_t{SIGKILL}}}) {
    auto r = ask(st, "revoke", revoke_args("t", sig));
    CHECK(r.find("ok")->as_text() == "terminate: t");
  }
  CHECK(kills == 3);
}
