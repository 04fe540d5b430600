// What ingestion hands the TSDB and the write buffer, without actors: the
// user identity normalization finds, the per-batch sums of the TSDB
// counts, and buffer.ingest-counters resolved against buffer.backend.

#include <map>
#include <string>

#include <catch2/catch.hpp>

#include "actors/ingest.hpp"
#include "actors/ingest_tsdb.hpp"
#include "config/config.hpp"
#include "messages/sentry_event.hpp"
#include "tests/unit/ingest_test_support.hpp"

using namespace vigil;
using vigil::testing::count_of;

namespace {

std::string identity_of(const std::string& json,
                        std::string_view client_ip = "") {
  normalize_options opts;
  opts.client_ip = client_ip;
  auto ev = normalize_event(json, 1, 1700000000.0, opts);
  REQUIRE(ev);
  return ev->user_identity;
}

bool through_buffer(const std::string& yaml) {
  auto cfg = config::from_yaml(yaml, {});
  REQUIRE(cfg);
  return ingest_counts_through_buffer(*cfg);
}

} // namespace

TEST_CASE("the event's user as Sentry's EventUser tags it", "[ingest][tsdb]") {
  // id, else email, else username, else the address.
  CHECK(identity_of(R"({"user":{"id":"u1","email":"a@b","username":"n",)"
                    R"("ip_address":"1.2.3.4"}})")
        == "id:u1");
  CHECK(identity_of(R"({"user":{"id":42}})") == "id:42");
  CHECK(identity_of(R"({"user":{"id":"","email":"a@b","username":"n"}})")
        == "email:a@b");
  CHECK(identity_of(R"({"user":{"username":"n","ip_address":"1.2.3.4"}})")
        == "username:n");
  CHECK(identity_of(R"({"user":{"ip_address":"1.2.3.4"}})") == "ip:1.2.3.4");
  CHECK(identity_of(R"({"sentry.interfaces.User":{"email":"old@b"}})")
        == "email:old@b");
  // The address as IP normalization leaves it: {{auto}} is the client's,
  // a JavaScript event without a user gets the client's.
  CHECK(identity_of(R"({"user":{"ip_address":"{{auto}}"}})", "10.0.0.7")
        == "ip:10.0.0.7");
  CHECK(identity_of(R"({"platform":"javascript"})", "10.0.0.8")
        == "ip:10.0.0.8");
  CHECK(identity_of(R"({"request":{"env":{"REMOTE_ADDR":"10.0.0.9"}}})")
        == "ip:10.0.0.9");
  // No user.
  CHECK(identity_of(R"({"message":"m"})", "10.0.0.7").empty());
  CHECK(identity_of(R"({"user":{"ip_address":"{{auto}}"}})").empty());
  CHECK(identity_of(R"({"user":null})").empty());
  CHECK(identity_of(R"({"user":"nobody"})").empty());
}

TEST_CASE("a batch's TSDB counts are summed per series", "[ingest][tsdb]") {
  ingest_tsdb_batch b{1700000123};
  CHECK(b.empty());
  quota_scoping s;
  s.organization_id = 7;
  s.project_id = 3;
  s.key_id = 9;
  b.item(s, "error", 1, item_outcome::accepted);
  b.item(s, "error", 1, item_outcome::accepted);
  b.item(s, "error", 1, item_outcome::rate_limited);
  b.item(s, "security", 1, item_outcome::filtered);
  b.item(s, "transaction", 1, item_outcome::accepted);
  b.item(s, "attachment", 2048, item_outcome::rate_limited);
  b.event(3, 11, "id:1");
  b.event(3, 11, "id:2");
  b.event(3, 0, "id:3"); // a transaction: no group
  b.event(3, 12, "");
  CHECK(!b.empty());
  auto incrs = b.incrs();
  using m = tsdb_model;
  for (auto& x : incrs)
    CHECK(x.timestamp == 1700000123);
  // One increment per series.
  std::map<std::pair<int, std::string>, int> seen;
  for (auto& x : incrs)
    CHECK(++seen[{static_cast<int>(x.model),
                  x.key.id ? std::to_string(*x.key.id) : x.key.text}]
          == 1);
  CHECK(count_of(incrs, m::project, tsdb_key::of(3)) == 4);
  CHECK(count_of(incrs, m::group, tsdb_key::of(11)) == 2);
  CHECK(count_of(incrs, m::group, tsdb_key::of(12)) == 1);
  // Error categories only: received is everything, rejected and
  // blacklisted its parts.
  CHECK(count_of(incrs, m::project_total_received, tsdb_key::of(3)) == 4);
  CHECK(count_of(incrs, m::project_total_rejected, tsdb_key::of(3)) == 1);
  CHECK(count_of(incrs, m::project_total_blacklisted, tsdb_key::of(3)) == 1);
  CHECK(count_of(incrs, m::organization_total_received, tsdb_key::of(7)) == 4);
  CHECK(count_of(incrs, m::organization_total_rejected, tsdb_key::of(7)) == 1);
  CHECK(count_of(incrs, m::organization_total_blacklisted, tsdb_key::of(7))
        == 1);
  CHECK(count_of(incrs, m::key_total_received, tsdb_key::of(9)) == 4);
  CHECK(count_of(incrs, m::key_total_rejected, tsdb_key::of(9)) == 1);
  CHECK(count_of(incrs, m::key_total_blacklisted, tsdb_key::of(9)) == 1);
  // Outcomes per category, in the category's unit.
  auto outcome = [&](const char* text) {
    return count_of(incrs, m::organization_outcomes,
                    tsdb_key::of(std::string{text}));
  };
  CHECK(outcome("7:error:accepted") == 2);
  CHECK(outcome("7:error:rate_limited") == 1);
  CHECK(outcome("7:security:filtered") == 1);
  CHECK(outcome("7:transaction:accepted") == 1);
  CHECK(outcome("7:attachment:rate_limited") == 2048);
  auto records = b.take_records();
  REQUIRE(records.size() == 2);
  for (auto& r : records) {
    CHECK(r.timestamp == 1700000123);
    if (r.model == m::users_affected_by_group) {
      CHECK(r.key.id == 11);
      CHECK(r.values == std::vector<std::string>{"id:1", "id:2"});
    } else {
      CHECK(r.model == m::users_affected_by_project);
      CHECK(r.key.id == 3);
      CHECK(r.values == std::vector<std::string>{"id:1", "id:2", "id:3"});
    }
  }
  // Without a key, no key series.
  ingest_tsdb_batch keyless{1};
  s.key_id = 0;
  keyless.item(s, "error", 1, item_outcome::accepted);
  auto k = keyless.incrs();
  CHECK(count_of(k, m::key_total_received, tsdb_key::of(0)) == 0);
  CHECK(k.size() == 3); // outcomes, project and organization received
}

TEST_CASE("an event's environment is counted beside all environments",
          "[ingest][tsdb]") {
  ingest_tsdb_batch b{1700000123};
  b.event(3, 11, "id:1", 5);
  b.event(3, 11, "id:2", 5);
  b.event(3, 11, "id:3", 6);
  b.event(3, 11, "id:4");
  using m = tsdb_model;
  // One increment per (series, environment); the backends write the
  // all-environments field of each as well.
  std::map<std::pair<int, int64_t>, int64_t> group;
  for (auto& x : b.incrs())
    if (x.model == m::group)
      group[{static_cast<int>(*x.key.id), x.environment_id.value_or(0)}]
        += x.count;
  CHECK(group == std::map<std::pair<int, int64_t>, int64_t>{
                   {{11, 0}, 1}, {{11, 5}, 2}, {{11, 6}, 1}});
  std::map<int64_t, std::vector<std::string>> users;
  for (auto& r : b.take_records())
    if (r.model == m::users_affected_by_group)
      users[r.environment_id.value_or(0)] = r.values;
  CHECK(users[5] == std::vector<std::string>{"id:1", "id:2"});
  CHECK(users[6] == std::vector<std::string>{"id:3"});
  CHECK(users[0] == std::vector<std::string>{"id:4"});
}

TEST_CASE("environment names are kept as Relay keeps them",
          "[ingest][tsdb]") {
  auto env = [](const std::string& json) {
    auto ev = normalize_event(json, 1, 1700000000.0, normalize_options{});
    REQUIRE(ev);
    return ev->environment;
  };
  CHECK(env(R"({"environment":"production"})") == "production");
  CHECK(env(R"({"message":"m"})").empty());
  CHECK(env(R"({"environment":""})").empty());
  CHECK(env(R"({"environment":"a/b"})").empty());
  CHECK(env(R"({"environment":"line\nbreak"})").empty());
  CHECK(env(R"({"environment":".."})").empty());
  CHECK(env(R"({"environment":42})").empty());
  CHECK(env("{\"environment\":\"" + std::string(64, 'e') + "\"}")
        == std::string(64, 'e'));
  CHECK(env("{\"environment\":\"" + std::string(65, 'e') + "\"}").empty());
  CHECK(valid_environment_name("staging-2"));
  CHECK(!valid_environment_name("tab\there"));
}

TEST_CASE("buffer.ingest-counters: auto follows buffer.backend",
          "[ingest][config]") {
  CHECK_FALSE(through_buffer(""));
  CHECK_FALSE(through_buffer("buffer.backend: memory\n"));
  CHECK(through_buffer("buffer.backend: redis\n"));
  CHECK(through_buffer("buffer.backend: memory\n"
                       "buffer.ingest-counters: buffer\n"));
  CHECK_FALSE(through_buffer("buffer.backend: redis\n"
                             "buffer.ingest-counters: transaction\n"));
  CHECK_FALSE(config::from_yaml("buffer.ingest-counters: sometimes\n", {}));
}
