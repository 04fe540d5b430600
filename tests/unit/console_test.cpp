// The web console's endpoint on the deterministic scheduler: the embedded
// files, the token, the inspector's answer passed on, and 503 when the
// inspector does not answer within the timeout (time advanced, not slept).

#include <catch2/catch.hpp>

#include <optional>
#include <string>
#include <vector>

#include <caf/all.hpp>

#include "actors/inspector.hpp"
#include "deterministic_config.hpp"
#include "web/console.hpp"
#include "web/console_assets.hpp"

using namespace vigil;

namespace {

/// Answers every cluster request with `json`.
inspector_actor::behavior_type answering_inspector(std::string json) {
  return {
    [json](snapshot_atom) { return json; },
    [json](snapshot_atom, cluster_atom) { return json; },
  };
}

struct silent_state {
  /// Kept, never delivered: the request stays unanswered.
  std::vector<caf::response_promise> held;
};

/// Takes every request and never answers.
inspector_actor::behavior_type
silent_inspector(inspector_actor::stateful_pointer<silent_state> self) {
  return {
    [self](snapshot_atom) -> caf::result<std::string> {
      self->state.held.push_back(self->make_response_promise());
      return caf::delegated<std::string>{};
    },
    [self](snapshot_atom, cluster_atom) -> caf::result<std::string> {
      self->state.held.push_back(self->make_response_promise());
      return caf::delegated<std::string>{};
    },
  };
}

struct fixture : testing::deterministic_fixture {
  std::vector<http_response> answers;

  http_request get(std::string target, std::string authz = "") {
    http_request req;
    req.message.method(boost::beast::http::verb::get);
    req.message.target(target);
    if (!authz.empty())
      req.message.set("Authorization", authz);
    req.remote_ip = "127.0.0.1";
    return req;
  }

  http_responder keep() {
    return [this](http_response r) { answers.push_back(std::move(r)); };
  }

  console_options options(std::optional<inspector_actor> inspector) {
    console_options o;
    o.token = "secret-token";
    o.inspector = std::move(inspector);
    o.broker_url = "memory://console-test";
    o.inspector_timeout = std::chrono::milliseconds{500};
    return o;
  }

  static std::string header(const http_response& r, std::string_view name) {
    for (auto& [k, v] : r.headers)
      if (k == name)
        return v;
    return {};
  }
};

} // namespace

TEST_CASE_METHOD(fixture, "the console's files are embedded and public",
                 "[console]") {
  REQUIRE(console_assets().size() >= 3);
  console_endpoint ep{sys, options(std::nullopt)};
  CHECK(console_endpoint::handles("/console"));
  CHECK(console_endpoint::handles("/console/api/cluster"));
  CHECK_FALSE(console_endpoint::handles("/consoles/"));
  ep.handle(get("/console/"), keep());
  ep.handle(get("/console/console.js"), keep());
  ep.handle(get("/console"), keep());
  ep.handle(get("/console/../web.cpp"), keep());
  REQUIRE(answers.size() == 4);
  CHECK(answers[0].status == 200);
  CHECK(answers[0].content_type.starts_with("text/html"));
  CHECK(answers[0].body.find("console.js") != std::string::npos);
  CHECK(header(answers[0], "Content-Security-Policy").find("default-src 'self'")
        != std::string::npos);
  CHECK(answers[1].status == 200);
  CHECK(answers[1].content_type.starts_with("text/javascript"));
  auto etag = header(answers[1], "ETag");
  CHECK(!etag.empty());
  CHECK(answers[2].status == 308);
  CHECK(header(answers[2], "Location") == "/console/");
  CHECK(answers[3].status == 404);
  answers.clear();
  auto again = get("/console/console.js");
  again.message.set("If-None-Match", etag);
  ep.handle(again, keep());
  REQUIRE(answers.size() == 1);
  CHECK(answers[0].status == 304);
  CHECK(answers[0].body.empty());
}

TEST_CASE_METHOD(fixture, "the console's data needs the API token",
                 "[console]") {
  auto insp = sys.spawn(answering_inspector, std::string{R"({"nodes":[]})"});
  console_endpoint ep{sys, options(insp)};
  ep.handle(get("/console/api/cluster"), keep());
  ep.handle(get("/console/api/cluster", "Bearer wrong"), keep());
  ep.handle(get("/console/api/dead-letters", "Basic secret-token"), keep());
  REQUIRE(answers.size() == 3);
  for (auto& a : answers) {
    CHECK(a.status == 401);
    CHECK(a.body.find("detail") != std::string::npos);
  }
  answers.clear();
  auto disabled_opts = options(insp);
  disabled_opts.token.clear();
  console_endpoint disabled{sys, disabled_opts};
  disabled.handle(get("/console/api/cluster", "Bearer "), keep());
  REQUIRE(answers.size() == 1);
  CHECK(answers[0].status == 401);
  CHECK(answers[0].body.find("api.token") != std::string::npos);
  caf::anon_send_exit(insp, caf::exit_reason::user_shutdown);
  sched.run();
}

TEST_CASE_METHOD(fixture, "the console answers the inspector's cluster JSON",
                 "[console]") {
  std::string json = R"({"nodes":[{"node":{"id":"vigil@a.1"},"reachable":true}]})";
  auto insp = sys.spawn(answering_inspector, json);
  console_endpoint ep{sys, options(insp)};
  ep.handle(get("/console/api/cluster", "Bearer secret-token"), keep());
  // Nothing answered on the HTTP thread: the short-lived actor asks.
  CHECK(answers.empty());
  sched.run();
  REQUIRE(answers.size() == 1);
  CHECK(answers[0].status == 200);
  CHECK(answers[0].body == json);
  CHECK(header(answers[0], "Cache-Control") == "no-store");
  caf::anon_send_exit(insp, caf::exit_reason::user_shutdown);
  sched.run();
}

TEST_CASE_METHOD(fixture, "the console answers 503 when the inspector does "
                          "not answer in time",
                 "[console]") {
  auto insp = sys.spawn(silent_inspector);
  console_endpoint ep{sys, options(insp)};
  ep.handle(get("/console/api/cluster", "Bearer secret-token"), keep());
  sched.run();
  CHECK(answers.empty());
  sched.clock().advance_time(std::chrono::milliseconds{600});
  sched.run();
  REQUIRE(answers.size() == 1);
  CHECK(answers[0].status == 503);
  CHECK(answers[0].body.find("the inspector did not answer")
        != std::string::npos);
  caf::anon_send_exit(insp, caf::exit_reason::user_shutdown);
  sched.run();
}

TEST_CASE_METHOD(fixture, "the console answers 503 without an inspector",
                 "[console]") {
  console_endpoint ep{sys, options(std::nullopt)};
  ep.handle(get("/console/api/cluster", "Bearer secret-token"), keep());
  REQUIRE(answers.size() == 1);
  CHECK(answers[0].status == 503);
  CHECK(answers[0].body.find("no inspector") != std::string::npos);
}
