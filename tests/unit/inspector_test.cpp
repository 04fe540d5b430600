// The inspector on CAF's deterministic scheduler: fake actors answer (or
// never answer) status requests, the test moves the clock past the
// inspector's timeout; nothing sleeps.

#include <catch2/catch.hpp>

#include <memory>
#include <vector>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include "actors/inspector.hpp"
#include "messages/node_card.hpp"
#include "tests/unit/deterministic_config.hpp"
#include "web/inspect_endpoint.hpp"

using namespace vigil;
using json = nlohmann::json;
using std::chrono::milliseconds;

namespace {

/// Promises a silent actor keeps, so that its requesters see no answer
/// until their timeout.
using promises = std::vector<caf::response_promise>;

caf::behavior answering_actor(caf::event_based_actor* self, std::string name,
                              uint64_t processed) {
  return {
    [=](status_atom) {
      actor_status st;
      st.id = self->id();
      st.name = name;
      st.processed = processed;
      st.extra["k"] = "v";
      return st;
    },
  };
}

/// Answers its first status request, then never again (a task blocks it).
caf::behavior blocking_actor(caf::event_based_actor* self,
                             std::shared_ptr<promises> held) {
  auto answered = std::make_shared<bool>(false);
  return {
    [=](status_atom) -> caf::result<actor_status> {
      if (!*answered) {
        *answered = true;
        actor_status st;
        st.id = self->id();
        st.name = "fake.blocking";
        return st;
      }
      auto rp = self->make_response_promise();
      held->push_back(rp);
      return caf::delegated<actor_status>{};
    },
  };
}

/// A supervisor with two children and one waiting for its restart.
caf::behavior fake_supervisor(caf::event_based_actor* self,
                              std::vector<caf::actor> children) {
  return {
    [=](status_atom) {
      std::vector<actor_status> all(1);
      all[0].id = self->id();
      all[0].name = "fake.supervisor";
      for (auto& c : children) {
        actor_status st;
        st.id = c.id();
        st.restarts = 3;
        all.push_back(st);
      }
      return all;
    },
    [=](caf::get_atom) {
      auto out = children;
      out.push_back(caf::actor{});
      return out;
    },
  };
}

struct inspector_fixture : vigil::testing::deterministic_fixture {
  actor_directory_ptr directory = std::make_shared<actor_directory>();
  std::shared_ptr<promises> held = std::make_shared<promises>();
  std::vector<caf::actor> spawned;
  inspector_actor inspector;

  inspector_fixture() {
    node_card card;
    card.id = "vigil@test.1";
    card.mode = "worker";
    inspector_options o;
    o.directory = directory;
    o.identity = std::make_shared<node_identity>(card);
    o.timeout = milliseconds{1000};
    inspector = make_inspector(sys, std::move(o));
    spawned.push_back(caf::actor_cast<caf::actor>(inspector));
  }

  ~inspector_fixture() {
    held->clear();
    for (auto& a : spawned)
      self->send_exit(a, caf::exit_reason::user_shutdown);
    sched.run();
  }

  template <class... Ts>
  caf::actor spawn(Ts&&... xs) {
    auto a = sys.spawn(std::forward<Ts>(xs)...);
    spawned.push_back(a);
    return a;
  }

  /// One snapshot, the clock moved past the timeout on the way.
  json snapshot() {
    self->send(inspector, snapshot_atom_v);
    sched.run();
    sched.clock().advance_time(milliseconds{1001});
    sched.run();
    json out;
    self->receive([&](std::string& text) { out = json::parse(text); },
                  caf::after(std::chrono::seconds{0}) >>
                    [] { FAIL("the inspector did not answer"); });
    return out;
  }

  static const json& row(const json& snap, const std::string& name) {
    for (auto& a : snap["actors"])
      if (a["name"] == name)
        return a;
    FAIL("no actor " << name << " in " << snap.dump());
    static json none;
    return none;
  }
};

} // namespace

TEST_CASE_METHOD(inspector_fixture,
                 "the inspector lists every directory actor with its figures",
                 "[inspector]") {
  directory->add("web", spawn(answering_actor, "fake.one", uint64_t{42}));
  auto snap = snapshot();
  CHECK(snap["node"]["id"] == "vigil@test.1");
  CHECK(snap["node"]["mode"] == "worker");
  CHECK(snap["reachable"] == true);
  CHECK(snap["time"].is_number());
  REQUIRE(snap["actors"].size() == 1);
  auto& a = snap["actors"][0];
  CHECK(a["service"] == "web");
  CHECK(a["answering"] == true);
  CHECK(a["processed"] == 42);
  CHECK(a["extra"]["k"] == "v");
  // No figures source: no service sections.
  CHECK_FALSE(snap.contains("queues"));
  CHECK_FALSE(snap.contains("buffer"));
}

TEST_CASE_METHOD(inspector_fixture,
                 "an actor that does not answer is listed as not answering "
                 "once the timeout passes",
                 "[inspector]") {
  directory->add("web", spawn(answering_actor, "fake.one", uint64_t{1}));
  directory->add("tasks", spawn(blocking_actor, held));
  auto first = snapshot();
  CHECK(row(first, "fake.blocking")["answering"] == true);
  auto second = snapshot();
  // Known by the name it answered with before.
  auto& silent = row(second, "fake.blocking");
  CHECK(silent["answering"] == false);
  CHECK(silent["last_error"].get<std::string>().find("timeout")
        != std::string::npos);
  CHECK(row(second, "fake.one")["answering"] == true);
}

TEST_CASE_METHOD(inspector_fixture,
                 "a supervisor's children are asked one by one, so one "
                 "blocked child does not hide the others",
                 "[inspector]") {
  auto good = spawn(answering_actor, "fake.child", uint64_t{7});
  auto blocked = spawn(blocking_actor, held);
  // Used up the blocking actor's one answer: it is silent from now on.
  self->send(blocked, status_atom_v);
  sched.run();
  self->receive([](actor_status&) {},
                caf::after(std::chrono::seconds{0}) >> [] { FAIL("no answer"); });
  directory->add("tasks", spawn(fake_supervisor,
                                std::vector<caf::actor>{good, blocked}),
                 status_reply::list);
  auto snap = snapshot();
  auto& actors = snap["actors"];
  REQUIRE(actors.size() == 4);
  CHECK(actors[0]["name"] == "fake.supervisor");
  CHECK(actors[0]["answering"] == true);
  CHECK(actors[1]["name"] == "fake.child");
  CHECK(actors[1]["answering"] == true);
  // The restart count is the supervisor's.
  CHECK(actors[1]["restarts"] == 3);
  CHECK(actors[2]["id"] == blocked.id());
  CHECK(actors[2]["answering"] == false);
  CHECK(actors[2]["restarts"] == 3);
  CHECK(actors[3]["name"] == "(restarting)");
  CHECK(actors[3]["answering"] == false);
}

TEST_CASE_METHOD(inspector_fixture,
                 "a cluster snapshot without membership lists this node",
                 "[inspector]") {
  directory->add("web", spawn(answering_actor, "fake.one", uint64_t{1}));
  self->send(inspector, snapshot_atom_v, cluster_atom_v);
  sched.run();
  json out;
  self->receive([&](std::string& text) { out = json::parse(text); },
                caf::after(std::chrono::seconds{0}) >> [] { FAIL("no answer"); });
  REQUIRE(out["nodes"].size() == 1);
  CHECK(out["nodes"][0]["node"]["id"] == "vigil@test.1");
}

TEST_CASE("node cards round-trip through JSON", "[inspector]") {
  node_card card;
  card.id = "vigil@h.9";
  card.host = "h";
  card.pid = 9;
  card.queues = {"a", "b"};
  card.started = 1.5;
  card.inspect = "127.0.0.1:4000";
  auto back = decode_node_card(encode_node_card(card));
  REQUIRE(back);
  CHECK(back->id == card.id);
  CHECK(back->queues == card.queues);
  CHECK(back->inspect == card.inspect);
  CHECK(back->started == 1.5);
  CHECK_FALSE(decode_node_card("{\"host\": \"h\"}"));
  CHECK_FALSE(decode_node_card("not json"));
  // Unknown keys and wrong types are ignored.
  auto odd = decode_node_card(R"({"id": "x", "pid": "nine", "new": 1})");
  REQUIRE(odd);
  CHECK(odd->pid == 0);
}

TEST_CASE("the management endpoint needs a token beyond loopback",
          "[inspector]") {
  auto off = inspect_endpoint_config("off", "");
  REQUIRE(off);
  CHECK_FALSE(off->has_value());
  auto local = inspect_endpoint_config("127.0.0.1:0", "");
  REQUIRE(local);
  REQUIRE(local->has_value());
  CHECK((*local)->port == 0);
  auto open = inspect_endpoint_config("0.0.0.0:9002", "");
  REQUIRE_FALSE(open);
  CHECK(caf::to_string(open.error()).find("inspect.token") != std::string::npos);
  CHECK(inspect_endpoint_config("0.0.0.0:9002", "t"));
  auto bad = inspect_endpoint_config("nonsense", "");
  REQUIRE_FALSE(bad);
  CHECK(caf::to_string(bad.error()).find("inspect.bind") != std::string::npos);
}
