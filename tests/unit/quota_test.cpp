// Quota helpers and the in-process backend: key layout, windows, matching,
// and the decision rules, driven by a deterministic clock (no sleeps).

#include <catch2/catch.hpp>

#include <caf/all.hpp>

#include "actors/backends/quota.hpp"
#include "actors/quota.hpp"
#include "actors/rate_limiter.hpp"
#include "config/config.hpp"
#include "config/organizations.hpp"
#include "node/actor_system.hpp"

using namespace vigil;

namespace {

quota_config make_quota(std::string id, quota_scope scope, int64_t limit,
                        int64_t window, std::string reason = "") {
  quota_config q;
  q.id = std::move(id);
  q.scope = scope;
  q.limit = limit;
  q.window = window;
  q.reason_code = reason.empty() ? q.id + "_quota" : std::move(reason);
  return q;
}

quota_scoping scoping(uint64_t org, uint64_t project, uint64_t key = 0,
                      std::string category = "error") {
  return {org, project, key, std::move(category)};
}

} // namespace

TEST_CASE("quota windows and keys follow Sentry's worked example", "[quota]") {
  // org 42, project 43, window 60, t = 1,000,000 (sentry-semantics.md 1.2).
  auto q = make_quota("p", quota_scope::project, 10, 60);
  auto w = make_quota_window(q, 42, 1000000);
  CHECK(w.slot == 16665);
  CHECK(w.expiry == 1000002);
  CHECK(quota_counter_key(q, scoping(42, 43), w.slot) == "quota:p{42}43:16665");
  auto o = make_quota("o", quota_scope::organization, 10, 60);
  CHECK(quota_counter_key(o, scoping(42, 43), w.slot) == "quota:o{42}:16665");
  auto k = make_quota("k", quota_scope::key, 10, 60);
  CHECK(quota_counter_key(k, scoping(42, 43, 7), 5) == "quota:k{42}7:5");
  CHECK(quota_refund_key("quota:o{42}:1") == "r:quota:o{42}:1");
  auto g = make_quota("g", quota_scope::global, 10, 60);
  CHECK(make_quota_window(g, 42, 1000000).slot == 1000000 / 60);
}

TEST_CASE("quotas match by scope id and category", "[quota]") {
  auto q = make_quota("k", quota_scope::key, 10, 60);
  q.scope_id = "7";
  CHECK(quota_matches(q, scoping(1, 2, 7)));
  CHECK_FALSE(quota_matches(q, scoping(1, 2, 8)));
  q.scope_id = "x7";
  CHECK_FALSE(quota_matches(q, scoping(1, 2, 7)));
  q.scope_id.clear();
  q.categories = {"transaction"};
  CHECK_FALSE(quota_matches(q, scoping(1, 2, 7)));
  CHECK(quota_matches(q, scoping(1, 2, 7, "transaction")));
  q.scope = quota_scope::unknown;
  CHECK_FALSE(quota_matches(q, scoping(1, 2, 7, "transaction")));
}

TEST_CASE("quota validation rejects what Relay cannot enforce", "[quota]") {
  CHECK_FALSE(validate_quota(make_quota("k", quota_scope::key, 10, 60)));
  CHECK(validate_quota(make_quota("k", quota_scope::key, -5, 60)));
  CHECK(validate_quota(make_quota("k", quota_scope::key, 10, 0)));
  CHECK_FALSE(validate_quota(make_quota("", quota_scope::key, 0, 0)));
  CHECK(validate_quota(make_quota("k", quota_scope::unknown, 1, 60)));
  CHECK(parse_quota_scope("global") == quota_scope::global);
  CHECK(parse_quota_scope("team") == quota_scope::unknown);
}

TEST_CASE("memory quotas roll over at the shifted window end", "[quota]") {
  int64_t now = 1000000;
  quota_backend_options opts;
  opts.url = "memory://unit-rollover";
  opts.clock = [&] { return now; };
  auto b = make_memory_quota_backend(opts);
  quota_check c{scoping(42, 43), {make_quota("p", quota_scope::project, 2, 60)},
                1, false};
  auto run = [&] {
    auto r = b->check_batch({c});
    REQUIRE(r);
    return r->at(0);
  };
  CHECK(run().accepted);
  CHECK(run().accepted);
  auto d = run();
  CHECK_FALSE(d.accepted);
  CHECK(d.retry_after == 2);
  CHECK(d.reason_code == "p_quota");
  now = 1000001; // same window (ends at 1000002 for org 42)
  CHECK_FALSE(run().accepted);
  now = 1000002; // next window
  CHECK(run().accepted);
  // Org 30 has another shift: its windows end at ...:50 (1000050).
  c.scoping = scoping(30, 43);
  now = 1000049;
  CHECK(run().accepted);
  CHECK(run().accepted);
  CHECK(run().retry_after == 1);
  now = 1000050;
  CHECK(run().accepted);
}

TEST_CASE("memory quotas expire their counters", "[quota]") {
  int64_t now = 5000;
  quota_backend_options opts;
  opts.url = "memory://unit-usage";
  opts.clock = [&] { return now; };
  auto b = make_memory_quota_backend(opts);
  auto q = make_quota("k", quota_scope::key, -1, 10);
  quota_check c{scoping(0, 1, 2), {q}, 3, false};
  REQUIRE(b->check_batch({c}));
  CHECK(*b->get_usage(c.scoping, q) == 3);
  REQUIRE_FALSE(b->refund(c.scoping, {q}, 1));
  CHECK(*b->get_usage(c.scoping, q) == 2);
  now += 10;
  CHECK(*b->get_usage(c.scoping, q) == -1);
}

namespace {

// The one problem `vigil config validate` reports for `yaml`.
std::string only_problem(const std::string& yaml) {
  auto problems = config::validate(yaml, {});
  REQUIRE(problems.size() == 1);
  return problems.front().message;
}

size_t count_of(const std::string& text, const std::string& word) {
  size_t n = 0;
  for (auto at = text.find(word); at != std::string::npos;
       at = text.find(word, at + 1))
    ++n;
  return n;
}

} // namespace

TEST_CASE("bad quota config is rejected with the key named once",
          "[quota][config]") {
  auto negative_key = only_problem(R"(
organizations: [{id: 1, slug: acme}]
projects:
  - id: 1
    organization: 1
    keys: [{id: 3, rate-limit: {count: -5, window: 60}}]
)");
  CHECK(negative_key
        == "projects: entry 1 (id 1), key 1 (id 3): rate-limit.count: "
           "expected an integer >= 0 (0 = none), got '-5'");
  CHECK(count_of(negative_key, "projects") == 1);
  CHECK(only_problem(R"(
projects:
  - {id: 1, organization: 1, keys: [{id: 3, rate-limit: {count: 50}}]}
)") == "projects: entry 1 (id 1), key 1 (id 3): rate-limit.window: "
       "expected an integer >= 1 (seconds) with a count, got 0");
  CHECK(only_problem("organizations: [{id: 4, account-rate-limit: -1}]\n")
        == "organizations: entry 1 (id 4): account-rate-limit: expected an "
           "integer >= 0, got '-1'");
  CHECK(only_problem("quotas: {extra: [{id: g, scope: global, limit: -5, "
                       "window: 60}]}\n")
        == "quotas.extra: entry 1 (id 'g'): limit: expected an integer >= 0 "
           "(or none for unlimited), got -5");
  CHECK(only_problem("quotas: {extra: [{id: g, limit: 10, window: 0}]}\n")
        == "quotas.extra: entry 1 (id 'g'): window: expected an integer >= 1 "
           "(seconds) for a quota with a limit other than 0, got 0");
  auto scope = only_problem("quotas: {extra: [{id: t, scope: team, "
                              "limit: 1, window: 60}]}\n");
  CHECK(scope
        == "quotas.extra: entry 1 (id 't'): scope: unknown scope 'team' "
           "(expected organization, project, key or global)");
  CHECK(count_of(scope, "quotas.extra") == 1);
  // What Relay accepts passes: limit 0 without a window, unlimited (-1).
  CHECK(config::validate("quotas: {extra: [{scope: organization, limit: 0, "
                         "reason-code: disabled}, {id: u, limit: -1, "
                         "window: 60}]}\n",
                         {})
          .empty());
}

TEST_CASE("API rate-limit checks use Sentry's auth keys", "[quota]") {
  auto ip = api_ip_check(10, "10.1.2.3");
  REQUIRE(ip);
  CHECK(ip->key == "auth:ip:10.1.2.3");
  CHECK(ip->limit == 10);
  CHECK(ip->window == 60);
  CHECK(ip->project_id == 0);
  CHECK_FALSE(api_ip_check(0, "10.1.2.3")); // auth.ip-rate-limit off
  auto user = api_user_check(5, "  Jane@Example.COM\n");
  REQUIRE(user);
  CHECK(user->key == "auth:username:jane@example.com");
  CHECK(user->window == 60);
  CHECK_FALSE(api_user_check(5, " \t"));
  CHECK_FALSE(api_user_check(0, "jane"));
  // The Redis key Sentry's RedisRateLimiter would use for it.
  CHECK(rate_limit_key(*ip, 7).rfind("rl:" + md5_hex("auth:ip:10.1.2.3"), 0)
        == 0);
}

TEST_CASE("the quota actor answers single and vector checks from one batch",
          "[quota]") {
  actor_system_config_ext cfg;
  caf::actor_system sys{cfg};
  quota_actor_options opts;
  opts.backend.url = "memory://unit-actor-batch";
  auto q = sys.spawn<caf::detached>(quota_service, opts);
  caf::scoped_actor self{sys};
  // Key 1 has a limit of 5, key 2 none: every answer must land with its own
  // request, in order, however the mailbox is cut into batches.
  auto make = [](uint64_t key) {
    quota_config k;
    k.id = "k";
    k.scope = quota_scope::key;
    k.limit = key == 1 ? 5 : -1;
    k.window = 3600;
    k.reason_code = "key_quota";
    return quota_check{scoping(1, 1, key), {k}, 1, false};
  };
  for (int i = 0; i < 4; ++i) {
    self->send(q, make(1));
    self->send(q, std::vector<quota_check>{make(2), make(1), make(2)});
  }
  size_t accepted_1 = 0;
  size_t singles = 0;
  size_t vectors = 0;
  for (int i = 0; i < 8; ++i)
    self->receive(
      [&](quota_decision& d) {
        ++singles;
        accepted_1 += d.accepted ? 1 : 0;
      },
      [&](std::vector<quota_decision>& ds) {
        ++vectors;
        REQUIRE(ds.size() == 3);
        CHECK(ds[0].accepted); // key 2: unlimited
        CHECK(ds[2].accepted);
        accepted_1 += ds[1].accepted ? 1 : 0;
        if (!ds[1].accepted)
          CHECK(ds[1].reason_code == "key_quota");
      },
      caf::after(std::chrono::seconds{10}) >> [&] { FAIL("no answer"); });
  CHECK(singles == 4);
  CHECK(vectors == 4);
  CHECK(accepted_1 == 5);
  std::string batches;
  self->request(q, std::chrono::seconds{5}, status_atom_v)
    .receive([&](actor_status& st) { batches = st.extra["batches"]; },
             [&](caf::error&) { FAIL("no status"); });
  CHECK(!batches.empty());
  caf::anon_send_exit(q, caf::exit_reason::user_shutdown);
}

TEST_CASE("organization, project and key quotas count error events only",
          "[quota]") {
  // Sentry's get_quotas: o, p and k carry DataCategory.error_categories().
  quota_catalog cat;
  cat.organizations.push_back({1, "acme", 100, 50});
  project_config p;
  p.id = 2;
  p.organization = 1;
  p.keys.push_back({3, std::string(32, '1'), true, 5, 3600});
  cat.projects.push_back(p);
  quota_config extra;
  extra.id = "pa";
  extra.scope = quota_scope::project;
  extra.categories = {"attachment"};
  extra.limit = 2048;
  extra.window = 3600;
  extra.reason_code = "attachment_quota";
  cat.extra.push_back(extra);
  auto quotas = cat.quotas_for(2, 3);
  REQUIRE(quotas.size() == 4);
  std::vector<std::string> ids;
  for (auto& q : quotas) {
    ids.push_back(q.id);
    if (q.id != "pa")
      CHECK(q.categories == error_categories());
  }
  CHECK(ids == std::vector<std::string>{"p", "o", "k", "pa"});
  quota_backend_options opts;
  opts.url = "memory://unit-error-categories";
  int64_t now = 1700000000;
  opts.clock = [&now] { return now; };
  auto store = make_memory_quota_backend(opts);
  auto check = [&](std::string category, int64_t quantity) {
    quota_check c{scoping(1, 2, 3, std::move(category)), quotas, quantity,
                  false};
    auto d = store->check_batch({c});
    REQUIRE(d);
    REQUIRE(d->size() == 1);
    return (*d)[0];
  };
  // Sessions, spans, transactions and attachments leave the key's 5 alone.
  for (int i = 0; i < 20; ++i) {
    CHECK(check("session", 1).accepted);
    CHECK(check("span", 3).accepted);
    CHECK(check("transaction", 1).accepted);
  }
  CHECK(check("attachment", 1024).accepted);
  CHECK(check("attachment", 1024).accepted);
  auto over = check("attachment", 1);
  CHECK_FALSE(over.accepted);
  CHECK(over.reason_code == "attachment_quota");
  for (int i = 0; i < 5; ++i)
    CHECK(check(i % 2 ? "default" : "error", 1).accepted);
  auto sixth = check("error", 1);
  CHECK_FALSE(sixth.accepted);
  CHECK(sixth.reason_code == "key_quota");
  CHECK(check("session", 1).accepted);
  // A disabled key rejects everything, whatever the category.
  cat.projects[0].keys[0].enabled = false;
  auto off = cat.quotas_for(2, 3);
  quota_check c{scoping(1, 2, 3, "session"), off, 1, false};
  auto d = store->check_batch({c});
  REQUIRE(d);
  CHECK_FALSE((*d)[0].accepted);
  CHECK((*d)[0].reason_code == "disabled");
}

TEST_CASE("a failed quota check means what quotas.fail-open says, wherever "
          "it failed", "[quota]") {
  using namespace std::chrono_literals;
  quota_outage outage;
  status_counters counters;
  auto t0 = std::chrono::steady_clock::time_point{} + 1h;
  SECTION("fail-open: every check accepted") {
    auto ds = quota_unavailable_decisions(true, 3, "quota store: down", outage,
                                          counters, t0);
    REQUIRE(ds.size() == 3);
    for (auto& d : ds) {
      CHECK(d.accepted);
      CHECK(d.retry_after == 0);
      CHECK(d.reason_code.empty());
    }
  }
  SECTION("fail-closed: every check rejected for a minute") {
    auto ds = quota_unavailable_decisions(false, 2, "quota store: down",
                                          outage, counters, t0);
    REQUIRE(ds.size() == 2);
    for (auto& d : ds) {
      CHECK_FALSE(d.accepted);
      CHECK(d.retry_after == reject_all_secs);
      CHECK(d.reason_code == quota_unavailable_reason);
    }
  }
  // Counted alike in both cases: the checks, and the failure with its reason.
  CHECK(outage.failed_open >= 2);
  CHECK(counters.errors == 1);
  CHECK(counters.last_error == "quota check failed: quota store: down");
  // The warning is due again only a minute later.
  CHECK(outage.last_warning == t0);
  quota_unavailable_decisions(true, 1, "again", outage, counters, t0 + 30s);
  CHECK(outage.last_warning == t0);
  quota_unavailable_decisions(true, 1, "again", outage, counters, t0 + 61s);
  CHECK(outage.last_warning == t0 + 61s);
  CHECK(counters.errors == 3);
}
