// Quota helpers and the in-process backend: key layout, windows, matching,
// and the decision rules, driven by a deterministic clock (no sleeps).

#include <catch2/catch.hpp>

#include "actors/backends/quota.hpp"

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
