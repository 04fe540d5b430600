// The read API's endpoints through read_api::handle, as the HTTP server
// calls it: the project and organization stats (TSDB series), the issues
// list and an issue (the group serializer, with the buffer's pending counts
// and the TSDB's user counts and hourly stats), and their 4xx answers. The
// TSDB and the buffer are written directly (memory backends of the same
// url share their data in the process).

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cmath>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include "actors/backends/buffer.hpp"
#include "actors/backends/event_store.hpp"
#include "actors/backends/tsdb.hpp"
#include "actors/tsdb.hpp"
#include "messages/clock.hpp"
#include "node/actor_system.hpp"
#include "tests/integration/buffer_test_support.hpp"
#include "web/read_api.hpp"

using namespace vigil;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

const std::string token = "read-api-test-token";

quota_catalog test_catalog() {
  quota_catalog c;
  c.organizations.push_back({1, "acme"});
  c.organizations.push_back({2, "other"});
  project_config backend;
  backend.id = 1;
  backend.organization = 1;
  backend.slug = "backend";
  project_config web;
  web.id = 2;
  web.organization = 1;
  web.slug = "web";
  project_config theirs;
  theirs.id = 3;
  theirs.organization = 2;
  theirs.slug = "backend";
  c.projects = {backend, web, theirs};
  return c;
}

struct answer {
  unsigned status = 0;
  std::string body;
  json doc;
};

/// A TSDB actor that takes every query and never answers it.
struct silent_state {
  static inline const char* name = "test.silent_tsdb";
  std::vector<caf::typed_response_promise<tsdb_answer>> held;
};

tsdb_actor::behavior_type
silent_tsdb(tsdb_actor::stateful_pointer<silent_state> self) {
  return {
    [](record_atom, std::vector<tsdb_incr>&, std::vector<tsdb_record>&) {},
    [](batch_atom) {},
    [=](tsdb_query&) -> caf::result<tsdb_answer> {
      auto rp = self->make_response_promise<tsdb_answer>();
      self->state.held.push_back(rp);
      return rp;
    },
    [=](status_atom) { return actor_status{}; },
  };
}

/// A node's read side: an SQLite event store, a memory TSDB behind its
/// actor, a memory buffer store, and the read API on them, at a fixed now.
struct fixture {
  actor_system_config_ext cfg;
  caf::actor_system sys{cfg};
  quota_catalog catalog = test_catalog();
  std::string db_url;
  tsdb_backend_options tsdb_opts;
  buffer_backend_options buffer_opts;
  std::unique_ptr<tsdb_backend> tsdb; // writes straight into the store
  std::unique_ptr<buffer_backend> buffer;
  std::unique_ptr<event_store> store;
  std::optional<tsdb_actor> tsdb_actor_;
  /// Now: the middle of a 10 s bucket, a few seconds ago (the memory
  /// TSDB expires by the real clock).
  int64_t now = tsdb_bucket_start(now_unix_us() / 1000000, 10) + 5;
  std::unique_ptr<read_api> api;
  /// The id of the last event `event` stored.
  std::string last_event_id;

  explicit fixture(bool silent = false) {
    static std::atomic<int> counter{0};
    auto n = std::to_string(++counter);
    db_url = "sqlite://" + vigil::testing::buffer_temp_dir() + "/read-api-"
             + n + ".db";
    auto s = event_store::open(db_url);
    REQUIRE(s);
    store = std::move(*s);
    tsdb_opts.backend = "memory";
    tsdb_opts.url = "memory://read-api-tsdb-" + n;
    tsdb = make_memory_tsdb(tsdb_opts);
    buffer_opts.backend = "memory";
    buffer_opts.url = "memory://read-api-buffer-" + n;
    buffer = make_memory_buffer_backend(buffer_opts);
    if (silent)
      tsdb_actor_ = sys.spawn(silent_tsdb);
    else
      tsdb_actor_ = sys.spawn<caf::detached>(tsdb_service, tsdb_opts);
  }

  ~fixture() {
    api.reset();
    caf::anon_send_exit(*tsdb_actor_, caf::exit_reason::user_shutdown);
  }

  read_api& start(std::function<void(read_api_options&)> tweak = {}) {
    read_api_options o;
    o.token = token;
    o.open_store = [url = db_url] { return event_store::open(url); };
    o.tsdb = tsdb_actor_;
    o.buffer_store = buffer_opts;
    o.tsdb_timeout = 300ms;
    o.clock = [t = now] { return static_cast<double>(t) + 0.25; };
    if (tweak)
      tweak(o);
    api = std::make_unique<read_api>(sys, catalog, std::move(o));
    return *api;
  }

  answer get(const std::string& target, const std::string& method = "GET",
             const std::string& auth = "Bearer " + token) {
    http_request req;
    req.message.method_string(method);
    req.message.target(target);
    if (!auth.empty())
      req.message.set("Authorization", auth);
    req.remote_ip = "127.0.0.1";
    auto done = std::make_shared<std::promise<http_response>>();
    auto fut = done->get_future();
    api->handle(std::move(req), [done](http_response r) {
      done->set_value(std::move(r));
    });
    REQUIRE(fut.wait_for(10s) == std::future_status::ready);
    auto r = fut.get();
    answer out{r.status, r.body, {}};
    out.doc = json::parse(r.body, nullptr, false);
    return out;
  }

  /// An event of project 1 in group `hash`; returns its group's id.
  int64_t event(const std::string& hash, double ts) {
    static std::atomic<int> ids{0};
    stored_event e;
    char id[33];
    std::snprintf(id, sizeof(id), "%032x", ++ids);
    e.event_id = id;
    e.project_id = 1;
    e.grouping_hash = hash;
    e.title = "title of " + hash;
    e.culprit = "culprit";
    e.timestamp = ts;
    e.json = R"({"event_id":")" + e.event_id + R"("})";
    last_event_id = e.event_id;
    auto out = store->store_batch({e});
    REQUIRE(out);
    return (*out)[0].group_id;
  }

  void count(tsdb_model model, tsdb_key key, int64_t ts, int64_t n) {
    REQUIRE_FALSE(tsdb->incr_multi({{model, std::move(key), ts, n,
                                     std::nullopt}}));
  }
};

std::string detail(const answer& a) {
  return a.doc.is_object() ? a.doc.value("detail", std::string{}) : a.body;
}

std::string q(int64_t since, int64_t until, const std::string& more = "") {
  return "since=" + std::to_string(since) + "&until=" + std::to_string(until)
         + more;
}

} // namespace

TEST_CASE("project stats answer the TSDB's series as Sentry's endpoint",
          "[read_api][stats]") {
  fixture f;
  f.start();
  auto t = f.now; // 5 s into its 10 s bucket
  auto b = t - 5;
  f.count(tsdb_model::project_total_received, tsdb_key::of(1), t, 3);
  f.count(tsdb_model::project_total_received, tsdb_key::of(1), t - 20, 2);
  f.count(tsdb_model::project_total_rejected, tsdb_key::of(1), t, 7);
  f.count(tsdb_model::project_total_blacklisted, tsdb_key::of(1), t - 10, 1);
  f.count(tsdb_model::project, tsdb_key::of(1), t, 4);
  // Another project's counts stay its own.
  f.count(tsdb_model::project_total_received, tsdb_key::of(2), t, 100);
  const std::string path = "/api/0/projects/acme/backend/stats/?";

  // stat defaults to received; resolution 10s as given.
  auto r = f.get(path + q(b - 30, t, "&resolution=10s"));
  REQUIRE(r.status == 200);
  CHECK(r.doc == json::parse("[[" + std::to_string(b - 30) + ",0],["
                             + std::to_string(b - 20) + ",2],["
                             + std::to_string(b - 10) + ",0],["
                             + std::to_string(b) + ",3]]"));
  auto sum = [](const json& series) {
    int64_t n = 0;
    for (const auto& p : series)
      n += p[1].get<int64_t>();
    return n;
  };
  CHECK(sum(f.get(path + q(b - 30, t, "&stat=rejected")).doc) == 7);
  CHECK(sum(f.get(path + q(b - 30, t, "&stat=blacklisted")).doc) == 1);
  CHECK(sum(f.get(path + q(b - 30, t, "&stat=generated")).doc) == 4);

  // No resolution: the optimal rollup of the range (a minute: 10 s; a
  // day: hours; 30 days: days), as get_optimal_rollup.
  auto minute = f.get(path + q(t - 60, t));
  REQUIRE(minute.status == 200);
  CHECK(minute.doc.size() == 7);
  CHECK(sum(minute.doc) == 5);
  auto month = f.get(path + q(t - 30 * 86400, t));
  REQUIRE(month.doc.size() == 31);
  CHECK(month.doc.back()[0] == tsdb_bucket_start(t, 86400));
  CHECK(sum(month.doc) == 5);
  // No since/until: the last day from now (until = now, since = a day
  // less a second before): 24 hourly buckets ending with now's.
  auto day = f.get(path);
  REQUIRE(day.status == 200);
  REQUIRE(day.doc.size() == 24);
  CHECK(day.doc.back()[0] == tsdb_bucket_start(t, 3600));
  CHECK(day.doc.front()[0] == tsdb_bucket_start(t, 3600) - 23 * 3600);
  CHECK(sum(day.doc) == 5);
  // Sentry walks back from a fractional until: since's fraction past
  // until's leaves since's bucket out.
  CHECK(f.get(path + "since=" + std::to_string(b - 20) + ".5&until="
              + std::to_string(b) + ".2&resolution=10s")
          .doc.size()
        == 2);
  CHECK(f.get(path + "since=" + std::to_string(b - 20) + ".2&until="
              + std::to_string(b) + ".5&resolution=10s")
          .doc.size()
        == 3);
  // resolution in other units that name a rollup.
  CHECK(f.get(path + q(t - 7200, t, "&resolution=60m")).doc.size() == 3);
  CHECK(f.get(path + q(t - 7200, t, "&resolution=1h")).doc.size() == 3);
}

TEST_CASE("project stats answer 4xx with a detail for bad input",
          "[read_api][stats]") {
  fixture f;
  f.start();
  auto t = f.now;
  const std::string path = "/api/0/projects/acme/backend/stats/?";
  struct bad_case {
    std::string query;
    unsigned status;
    std::string detail;
  };
  std::vector<bad_case> cases = {
    {"stat=accepted", 400, "Invalid stat: accepted"},
    {"resolution=7s", 400, "Invalid resolution"},
    {"resolution=1w", 400, "Invalid resolution"},
    {"resolution=h", 400, "Invalid resolution"},
    {"resolution=-10s", 400, "Invalid resolution"},
    {"until=yesterday", 400, "until must be a numeric timestamp"},
    {"until=nan", 400, "until must be a numeric timestamp"},
    {"until=1e400", 400, "until must be a numeric timestamp"},
    {"since=-5", 400, "since must be a numeric timestamp"},
    {"since=12abc", 400, "since must be a numeric timestamp"},
    {q(t, t - 1), 400, "start must be before or equal to end"},
    {q(0, t, "&resolution=10s"), 400, "narrow since/until"},
  };
  for (const auto& c : cases) {
    INFO(c.query);
    auto r = f.get(path + c.query);
    CHECK(r.status == c.status);
    CHECK_THAT(detail(r), Catch::Contains(c.detail));
  }
  CHECK(f.get("/api/0/projects/acme/nope/stats/").status == 404);
  CHECK(f.get("/api/0/projects/nope/backend/stats/").status == 404);
  CHECK(f.get("/api/0/projects/acme/backend/stats/", "POST").status == 405);
  CHECK(f.get("/api/0/projects/acme/backend/stats/", "GET", "").status
        == 401);
  CHECK(f.get("/api/0/projects/acme/backend/stats/", "GET", "Bearer wrong")
          .status
        == 401);
  // Since and until equal: one bucket.
  CHECK(f.get(path + q(t, t)).doc.size() == 1);
}

TEST_CASE("organization stats total each category and outcome",
          "[read_api][stats]") {
  fixture f;
  f.start();
  auto t = f.now;
  auto out = [](const std::string& k) {
    return tsdb_key::of(std::string{k});
  };
  f.count(tsdb_model::organization_outcomes, out("1:error:accepted"), t, 5);
  f.count(tsdb_model::organization_outcomes, out("1:error:accepted"),
          t - 3600, 1);
  f.count(tsdb_model::organization_outcomes, out("1:error:rate_limited"), t,
          2);
  f.count(tsdb_model::organization_outcomes, out("1:attachment:accepted"), t,
          2048);
  f.count(tsdb_model::organization_outcomes, out("1:transaction:filtered"), t,
          1);
  // Organization 2's counts are not 1's.
  f.count(tsdb_model::organization_outcomes, out("2:error:accepted"), t, 50);
  f.count(tsdb_model::organization_total_received, tsdb_key::of(1), t, 8);
  f.count(tsdb_model::organization_total_rejected, tsdb_key::of(1), t, 2);
  f.count(tsdb_model::project_total_received, tsdb_key::of(1), t, 6);
  f.count(tsdb_model::project_total_received, tsdb_key::of(2), t, 2);

  auto r = f.get("/api/0/organizations/acme/stats/?" + q(t - 7200, t));
  REQUIRE(r.status == 200);
  INFO(r.body);
  CHECK(r.doc["rollup"] == 3600);
  CHECK(r.doc["intervals"].size() == 3);
  CHECK(r.doc["start"].get<std::string>().back() == 'Z');
  std::map<std::pair<std::string, std::string>, int64_t> totals;
  for (const auto& g : r.doc["groups"]) {
    totals[{g["by"]["category"], g["by"]["outcome"]}] =
      g["totals"]["sum(quantity)"];
    CHECK(g["series"]["sum(quantity)"].size() == 3);
  }
  CHECK(totals == std::map<std::pair<std::string, std::string>, int64_t>{
                    {{"error", "accepted"}, 6},
                    {{"error", "rate_limited"}, 2},
                    {{"attachment", "accepted"}, 2048},
                    {{"transaction", "filtered"}, 1}});
  // Filters by category and outcome.
  auto errors = f.get("/api/0/organizations/acme/stats/?" + q(t - 60, t)
                      + "&category=error&outcome=accepted");
  REQUIRE(errors.doc["groups"].size() == 1);
  CHECK(errors.doc["groups"][0]["totals"]["sum(quantity)"] == 5);
  CHECK(f.get("/api/0/organizations/acme/stats/?category=errors").status
        == 400);
  CHECK(f.get("/api/0/organizations/acme/stats/?outcome=dropped").status
        == 400);
  CHECK(f.get("/api/0/organizations/acme/stats/?since=x").status == 400);
  CHECK(f.get("/api/0/organizations/nope/stats/").status == 404);

  // Sentry's v1 form: `stat` gives the organization's series ...
  auto v1 = f.get("/api/0/organizations/acme/stats/?" + q(t - 20, t)
                  + "&stat=received&resolution=10s");
  REQUIRE(v1.status == 200);
  CHECK(v1.doc.size() == 3);
  CHECK(v1.doc.back() == json::array({t - 5, 8}));
  auto rejected = f.get("/api/0/organizations/acme/stats/?" + q(t - 20, t)
                        + "&stat=rejected");
  CHECK(rejected.doc.back()[1] == 2);
  // ... or each project's, by id.
  auto by_project = f.get("/api/0/organizations/acme/stats/?" + q(t - 20, t)
                          + "&stat=received&group=project");
  REQUIRE(by_project.status == 200);
  CHECK(by_project.doc["1"].back()[1] == 6);
  CHECK(by_project.doc["2"].back()[1] == 2);
  CHECK_FALSE(by_project.doc.contains("3")); // organization 2's
  auto only = f.get("/api/0/organizations/acme/stats/?" + q(t - 20, t)
                    + "&stat=received&group=project&id=2");
  CHECK(only.doc.size() == 1);
  CHECK(f.get("/api/0/organizations/acme/stats/?stat=received&group=team")
          .status
        == 400);
  CHECK(f.get("/api/0/organizations/acme/stats/?stat=bogus").status == 400);
  CHECK(f.get("/api/0/organizations/acme/stats/?stat=received&group=project"
              "&id=x")
          .status
        == 400);
}

TEST_CASE("issues carry Sentry's group fields with pending counts, users "
          "and hourly stats",
          "[read_api][issues]") {
  fixture f;
  f.start();
  auto t = f.now;
  // Group a: two events in SQL two hours ago and now; b: one event.
  auto a = f.event("hash-a", static_cast<double>(t - 7200) + 0.5);
  REQUIRE(f.event("hash-a", static_cast<double>(t)) == a);
  auto b = f.event("hash-b", static_cast<double>(t - 60));
  // The buffer holds 5 more of a, not yet flushed (as ingestion sends
  // them: filters {id}, times_seen, extra last_seen).
  REQUIRE_FALSE(f.buffer->incr({vigil::testing::seen(a, 5, t * 1000000)}, t));
  // The TSDB: a's events per hour, and its users.
  f.count(tsdb_model::group, tsdb_key::of(a), t - 7200, 1);
  f.count(tsdb_model::group, tsdb_key::of(a), t, 6);
  f.count(tsdb_model::group, tsdb_key::of(b), t - 60, 1);
  REQUIRE_FALSE(f.tsdb->record_multi(
    {{tsdb_model::users_affected_by_group, tsdb_key::of(a),
      {"id:1", "id:2"}, t - 7200, std::nullopt},
     {tsdb_model::users_affected_by_group, tsdb_key::of(a),
      {"id:2", "email:x@example.com", "ip:10.0.0.1"}, t, std::nullopt},
     {tsdb_model::users_affected_by_group, tsdb_key::of(b), {"id:1"}, t - 60,
      std::nullopt}}));

  auto r = f.get("/api/0/projects/acme/backend/issues/");
  REQUIRE(r.status == 200);
  INFO(r.body);
  REQUIRE(r.doc.size() == 2);
  auto ga = r.doc[0]["id"] == std::to_string(a) ? r.doc[0] : r.doc[1];
  auto gb = r.doc[0]["id"] == std::to_string(a) ? r.doc[1] : r.doc[0];
  // SQL's 2 plus the buffer's 5; count is a string, as Sentry's.
  CHECK(ga["times_seen"] == 7);
  CHECK(ga["count"] == "7");
  CHECK(ga["userCount"] == 4);
  CHECK(gb["count"] == "1");
  CHECK(gb["userCount"] == 1);
  CHECK(ga["firstSeen"] == format_iso8601_naive((t - 7200) * 1000000 + 500000)
                             + "Z");
  CHECK(ga["lastSeen"] == format_iso8601_naive(t * 1000000) + "Z");
  CHECK(ga["first_seen"]
        == format_iso8601((t - 7200) * 1000000 + 500000)); // as before
  CHECK(ga["project"]["slug"] == "backend");
  auto& hours = ga["stats"]["24h"];
  REQUIRE(hours.size() == 24);
  auto hour = tsdb_bucket_start(t, 3600);
  CHECK(hours[23] == json::array({hour, 6}));
  CHECK(hours[21] == json::array({hour - 7200, 1}));
  CHECK(hours[0][0] == hour - 23 * 3600);
  CHECK(gb["stats"]["24h"][23][1] == 1);

  // The same through the issue's own endpoint.
  auto one = f.get("/api/0/issues/" + std::to_string(a) + "/");
  REQUIRE(one.status == 200);
  CHECK(one.doc["count"] == "7");
  CHECK(one.doc["userCount"] == 4);
  CHECK(one.doc["stats"]["24h"].size() == 24);
  CHECK(one.doc["title"] == "title of hash-a");

  // statsPeriod as Sentry's list: 14d, '' (none), else 400.
  auto days = f.get("/api/0/projects/acme/backend/issues/?statsPeriod=14d");
  REQUIRE(days.status == 200);
  CHECK(days.doc[0]["stats"]["14d"].size() == 14);
  auto none = f.get("/api/0/projects/acme/backend/issues/?statsPeriod=");
  CHECK_FALSE(none.doc[0].contains("stats"));
  CHECK(f.get("/api/0/projects/acme/backend/issues/?statsPeriod=1h").status
        == 400);

  CHECK(f.get("/api/0/issues/abc/").status == 400);
  CHECK(f.get("/api/0/issues/-4/").status == 400);
  CHECK(f.get("/api/0/issues/999999/").status == 404);
  CHECK(f.get("/api/0/issues/1/", "POST").status == 405);
  CHECK(f.get("/api/0/issues/1/", "GET", "").status == 401);
  // A project without issues lists none.
  CHECK(f.get("/api/0/projects/acme/web/issues/").doc == json::array());
}

TEST_CASE("issues and project stats of one environment", "[read_api][issues]") {
  fixture f;
  f.start();
  auto t = f.now;
  auto a = f.event("hash-env", static_cast<double>(t - 60));
  REQUIRE(f.event("hash-env", static_cast<double>(t)) == a);
  auto ids = f.store->environment_ids(1, {"production", "staging"});
  REQUIRE(ids);
  auto prod = (*ids)[0];
  auto staging = (*ids)[1];
  // As ingestion writes them: the environment's field and, by the backend,
  // the all-environments one.
  REQUIRE_FALSE(f.tsdb->incr_multi(
    {{tsdb_model::group, tsdb_key::of(a), t - 60, 1, prod},
     {tsdb_model::group, tsdb_key::of(a), t, 1, staging},
     {tsdb_model::project, tsdb_key::of(1), t - 60, 1, prod},
     {tsdb_model::project, tsdb_key::of(1), t, 1, staging}}));
  REQUIRE_FALSE(f.tsdb->record_multi(
    {{tsdb_model::users_affected_by_group, tsdb_key::of(a), {"id:1"}, t - 60,
      prod},
     {tsdb_model::users_affected_by_group, tsdb_key::of(a), {"id:2"}, t,
      staging}}));

  auto all = f.get("/api/0/issues/" + std::to_string(a) + "/");
  REQUIRE(all.status == 200);
  CHECK(all.doc["count"] == "2");
  CHECK(all.doc["userCount"] == 2);
  auto one = f.get("/api/0/issues/" + std::to_string(a)
                   + "/?environment=staging");
  REQUIRE(one.status == 200);
  INFO(one.body);
  CHECK(one.doc["count"] == "1");
  CHECK(one.doc["userCount"] == 1);
  CHECK(one.doc["stats"]["24h"][23][1] == 1);
  auto list = f.get("/api/0/projects/acme/backend/issues/?environment=production");
  REQUIRE(list.status == 200);
  CHECK(list.doc[0]["count"] == "1");
  CHECK(list.doc[0]["userCount"] == 1);
  // Unknown, or another organization's: 404 as Sentry's.
  auto unknown = f.get("/api/0/issues/" + std::to_string(a)
                       + "/?environment=nowhere");
  CHECK(unknown.status == 404);
  CHECK(detail(unknown).find("Environment does not exist") == 0);
  CHECK(f.get("/api/0/projects/other/backend/stats/?stat=generated&"
              "environment=staging")
          .status
        == 404);

  auto stats = f.get("/api/0/projects/acme/backend/stats/?stat=generated&"
                     + q(t - 3600, t, "&resolution=1h&environment=staging"));
  REQUIRE(stats.status == 200);
  int64_t sum = 0;
  for (auto& p : stats.doc)
    sum += p[1].get<int64_t>();
  CHECK(sum == 1);
}

TEST_CASE("a TSDB that does not answer leaves the issues list whole",
          "[read_api][issues]") {
  fixture f{true};
  f.start([](read_api_options& o) {
    // The buffer store is down too: SQL's counts stand.
    o.buffer_store->backend = "redis";
    o.buffer_store->url = "redis://127.0.0.1:1/0";
    o.buffer_store->timeout = 200ms;
  });
  auto a = f.event("hash-a", static_cast<double>(f.now));
  auto r = f.get("/api/0/projects/acme/backend/issues/");
  REQUIRE(r.status == 200);
  REQUIRE(r.doc.size() == 1);
  CHECK(r.doc[0]["id"] == std::to_string(a));
  CHECK(r.doc[0]["count"] == "1");
  CHECK(r.doc[0]["times_seen"] == 1);
  CHECK(r.doc[0]["userCount"] == 0);
  CHECK(r.doc[0]["stats"]["24h"] == json::array());
  // The stats endpoints have nothing to answer with: 503, retry later.
  auto s = f.get("/api/0/projects/acme/backend/stats/");
  CHECK(s.status == 503);
  CHECK(f.get("/api/0/organizations/acme/stats/").status == 503);
}

TEST_CASE("events are still read by id through the split read API",
          "[read_api]") {
  fixture f;
  f.start();
  f.event("hash-e", static_cast<double>(f.now));
  auto r = f.get("/api/0/projects/acme/backend/events/" + f.last_event_id
                 + "/");
  REQUIRE(r.status == 200);
  CHECK(r.doc["event_id"] == f.last_event_id);
  // Another project's path does not reach it.
  CHECK(f.get("/api/0/projects/acme/web/events/" + f.last_event_id + "/")
          .status
        == 404);
  CHECK(f.get("/api/0/projects/acme/backend/events/not-an-id/").status
        == 400);
  CHECK(f.get("/api/0/projects/acme/backend/events/"
              "0123456789abcdef0123456789abcdef/")
          .status
        == 404);
  CHECK(f.get("/api/0/projects/acme/backend/nothing/").status == 404);
  CHECK(f.get("/api/0/nothing/").status == 404);
}
