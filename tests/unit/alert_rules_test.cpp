// Alert rules: config parsing and its errors, each condition and filter,
// the default rule, the timeline record's codec, regressions in the event
// store, and post_process end to end on SQLite and the memory TSDB with
// the frequency limit (GroupRuleStatus).

#include <catch2/catch.hpp>

#include "actors/backends/alert_state.hpp"
#include "actors/backends/event_store.hpp"
#include "config/organizations.hpp"
#include "messages/alert_record.hpp"
#include "messages/alert_rules.hpp"
#include "messages/errors.hpp"
#include "messages/msgpack_codec.hpp"
#include "messages/post_process_record.hpp"
#include "messages/post_process_task.hpp"
#include "messages/task_body.hpp"
#include "messages/value.hpp"
#include "tasks/event_tasks.hpp"
#include "tests/unit/ingest_test_support.hpp"

using namespace vigil;

namespace {

std::vector<alert_rule> rules_of(const std::string& yaml) {
  auto parsed = parse_projects(YAML::Load(yaml));
  if (!parsed)
    FAIL(error_text(parsed.error()));
  REQUIRE(parsed->size() == 1);
  return parsed->front().alert_rules;
}

std::string rules_error(const std::string& rules_yaml) {
  auto parsed = parse_projects(YAML::Load(
    "- {id: 1, organization: 1, alert-rules: " + rules_yaml + "}"));
  REQUIRE_FALSE(parsed);
  return error_text(parsed.error());
}

alert_condition cond(alert_condition_kind k, int64_t value = 0,
                     int64_t secs = 3600) {
  alert_condition c;
  c.kind = k;
  c.value = value;
  c.interval_secs = secs;
  return c;
}

alert_filter level_filter(level_match m, int level) {
  alert_filter f;
  f.kind = alert_filter::level;
  f.match = m;
  f.level_number = level;
  return f;
}

alert_event_facts facts(const std::string& level,
                        std::vector<std::pair<std::string, std::string>> tags
                        = {}) {
  alert_event_facts f;
  f.level = level;
  f.tags = std::move(tags);
  return f;
}

} // namespace

TEST_CASE("alert rules: a project without rules gets Sentry's default rule",
          "[alert_rules]") {
  auto rules = rules_of("- {id: 1, organization: 1}");
  REQUIRE(rules.size() == 1);
  CHECK(rules[0].id == "default");
  CHECK(rules[0].label == "Send a notification for new issues");
  REQUIRE(rules[0].conditions.size() == 1);
  CHECK(rules[0].conditions[0].kind == alert_condition_kind::first_seen);
  CHECK(rules[0].filters.empty());
  CHECK(rules[0].frequency_minutes == 30);
  CHECK(rules[0].action_match == alert_match::all);
  // An empty list opts out.
  CHECK(rules_of("- {id: 1, organization: 1, alert-rules: []}").empty());
}

TEST_CASE("alert rules: parsing every condition, filter and option",
          "[alert_rules]") {
  auto rules = rules_of(R"(
- id: 1
  organization: 1
  alert-rules:
    - id: busy
      label: Busy issue
      action-match: any
      filter-match: all
      frequency: 5
      conditions:
        - first_seen
        - regression
        - every_event
        - event_frequency: {value: 100, interval: 1h}
        - users_frequency: {value: 10, interval: 30d}
      filters:
        - level: {match: eq, level: fatal}
        - level: {level: warning}
        - tags: {key: browser, value: Firefox}
    - id: plain
      conditions: [first_seen]
)");
  REQUIRE(rules.size() == 2);
  const auto& r = rules[0];
  CHECK(r.id == "busy");
  CHECK(r.label == "Busy issue");
  CHECK(r.action_match == alert_match::any);
  CHECK(r.frequency_minutes == 5);
  REQUIRE(r.conditions.size() == 5);
  CHECK(r.conditions[3].kind == alert_condition_kind::event_frequency);
  CHECK(r.conditions[3].value == 100);
  CHECK(r.conditions[3].interval_secs == 3600);
  CHECK(r.conditions[4].kind == alert_condition_kind::users_frequency);
  CHECK(r.conditions[4].interval_secs == 30 * 86400);
  REQUIRE(r.filters.size() == 3);
  CHECK(r.filters[0].match == level_match::eq);
  CHECK(r.filters[0].level_number == 50);
  CHECK(r.filters[1].match == level_match::gte);
  CHECK(r.filters[1].level_number == 30);
  CHECK(r.filters[2].kind == alert_filter::tag);
  CHECK(r.filters[2].key == "browser");
  CHECK(rules[1].label == "plain");
  CHECK(rules[1].frequency_minutes == 30);
  for (auto [name, secs] :
       std::vector<std::pair<std::string, int64_t>>{{"1m", 60}, {"5m", 300},
                                                    {"15m", 900},
                                                    {"1d", 86400},
                                                    {"1w", 604800}})
    CHECK(alert_interval_secs(name) == secs);
  CHECK_FALSE(alert_interval_secs("2h"));
}

TEST_CASE("alert rules: config errors name the key", "[alert_rules]") {
  CHECK(rules_error("[{id: a, conditions: [x]}]")
        == "entry 1 (id 1): alert-rules: entry 1 (id 'a'): conditions: "
           "entry 1: unknown condition 'x' (expected first_seen, regression, "
           "every_event, event_frequency, users_frequency)");
  CHECK_THAT(rules_error("[{id: a, conditions: [first_seen]}, {id: b, "
                         "conditions: [{event_frequency: {value: 3, interval: "
                         "2h}}]}]"),
             Catch::Contains("alert-rules: entry 2 (id 'b'): conditions: "
                             "entry 1: event_frequency: interval: unknown "
                             "interval '2h' (expected 1m, 5m, 15m, 1h, 1d, "
                             "1w, 30d)"));
  CHECK_THAT(rules_error("[{id: a, conditions: [{event_frequency: "
                         "{interval: 1h}}]}]"),
             Catch::Contains("event_frequency: value: is required"));
  CHECK_THAT(rules_error("[{id: a, conditions: [{users_frequency: "
                         "{value: -1}}]}]"),
             Catch::Contains("users_frequency: value: expected an integer "
                             ">= 0, got '-1'"));
  CHECK_THAT(rules_error("[{conditions: [first_seen]}]"),
             Catch::Contains("entry 1: id: is required"));
  CHECK_THAT(rules_error("[{id: a}]"),
             Catch::Contains("(id 'a'): conditions: at least one is "
                             "required"));
  CHECK_THAT(rules_error("[{id: a, conditions: [first_seen]}, {id: a, "
                         "conditions: [regression]}]"),
             Catch::Contains("entry 2 (id 'a'): id: 'a' is used by another "
                             "rule"));
  CHECK_THAT(rules_error("[{id: a, conditions: [first_seen], frequency: 0}]"),
             Catch::Contains("frequency: expected minutes from 1 to 43200"));
  CHECK_THAT(rules_error("[{id: a, conditions: [first_seen], often: 1}]"),
             Catch::Contains("unknown key 'often'"));
  CHECK_THAT(rules_error("[{id: a, conditions: [first_seen], filters: "
                         "[{level: {level: loud}}]}]"),
             Catch::Contains("filters: entry 1: level: level: expected "
                             "debug, info, warning, error or fatal, got "
                             "'loud'"));
  CHECK_THAT(rules_error("[{id: a, conditions: [first_seen], filters: "
                         "[{level: {match: gt, level: error}}]}]"),
             Catch::Contains("match: unknown match 'gt' (expected gte, eq, "
                             "lte)"));
  CHECK_THAT(rules_error("[{id: a, conditions: [first_seen], filters: "
                         "[{tags: {key: k, value: v, match: ne}}]}]"),
             Catch::Contains("tags: match: only eq is supported"));
  CHECK_THAT(rules_error("[{id: a, conditions: [first_seen], filters: "
                         "[{release: 1}]}]"),
             Catch::Contains("unknown filter 'release' (expected level, "
                             "tags)"));
  CHECK_THAT(rules_error("[{id: a, conditions: [first_seen], action-match: "
                         "none}]"),
             Catch::Contains("action-match: expected all or any"));
  CHECK_THAT(rules_error("{id: a}"),
             Catch::Contains("alert-rules: expected a list of rules"));
}

TEST_CASE("alert rules: first_seen, regression and every_event",
          "[alert_rules]") {
  alert_inputs in;
  using k = alert_condition_kind;
  CHECK_FALSE(*alert_condition_passes(cond(k::first_seen), in));
  CHECK_FALSE(*alert_condition_passes(cond(k::regression), in));
  CHECK(*alert_condition_passes(cond(k::every_event), in));
  in.is_new = true;
  CHECK(*alert_condition_passes(cond(k::first_seen), in));
  CHECK_FALSE(*alert_condition_passes(cond(k::regression), in));
  in.is_new = false;
  in.is_regression = true;
  CHECK(*alert_condition_passes(cond(k::regression), in));
  CHECK(*alert_rule_passes(default_alert_rule(), alert_inputs{true}));
  CHECK_FALSE(*alert_rule_passes(default_alert_rule(), alert_inputs{}));
}

TEST_CASE("alert rules: frequency conditions compare the count, strictly",
          "[alert_rules]") {
  using k = alert_condition_kind;
  alert_inputs in;
  std::vector<std::pair<k, int64_t>> asked;
  int64_t events = 0;
  int64_t users = 0;
  in.count = [&](k kind, int64_t secs) -> caf::expected<int64_t> {
    asked.emplace_back(kind, secs);
    return kind == k::event_frequency ? events : users;
  };
  auto freq = cond(k::event_frequency, 3, 300);
  events = 3;
  CHECK_FALSE(*alert_condition_passes(freq, in));
  events = 4;
  CHECK(*alert_condition_passes(freq, in));
  REQUIRE(asked.size() == 2);
  CHECK(asked[0] == std::pair{k::event_frequency, int64_t{300}});
  auto ufreq = cond(k::users_frequency, 1, 86400);
  users = 2;
  CHECK(*alert_condition_passes(ufreq, in));
  CHECK(asked.back() == std::pair{k::users_frequency, int64_t{86400}});
  // A new issue's first event never exceeds a threshold above 1: no count.
  in.is_new = true;
  asked.clear();
  CHECK_FALSE(*alert_condition_passes(freq, in));
  CHECK(asked.empty());
  // ... but one of 0 may be exceeded at once.
  CHECK(*alert_condition_passes(cond(k::event_frequency, 0), in));
  // A failed read is the condition's error.
  in.count = [](k, int64_t) -> caf::expected<int64_t> {
    return caf::make_error(errc::unavailable, "tsdb down");
  };
  CHECK_FALSE(alert_condition_passes(cond(k::event_frequency, 0), in));
}

TEST_CASE("alert rules: level filters", "[alert_rules]") {
  auto error = alert_level_number("error").value();
  CHECK(alert_filter_passes(level_filter(level_match::gte, error),
                            facts("fatal")));
  CHECK(alert_filter_passes(level_filter(level_match::gte, error),
                            facts("error")));
  CHECK_FALSE(alert_filter_passes(level_filter(level_match::gte, error),
                                  facts("warning")));
  CHECK(alert_filter_passes(level_filter(level_match::eq, error),
                            facts("ERROR")));
  CHECK_FALSE(alert_filter_passes(level_filter(level_match::eq, error),
                                  facts("fatal")));
  CHECK(alert_filter_passes(level_filter(level_match::lte, error),
                            facts("info")));
  CHECK_FALSE(alert_filter_passes(level_filter(level_match::lte, error),
                                  facts("fatal")));
  // A level Sentry does not know passes no level filter.
  CHECK_FALSE(alert_filter_passes(level_filter(level_match::lte, error),
                                  facts("loud")));
  CHECK(alert_level_number("warn") == 30);
  CHECK(alert_level_number("debug") == 10);
}

TEST_CASE("alert rules: tag filters and the event's facts", "[alert_rules]") {
  alert_filter f;
  f.kind = alert_filter::tag;
  f.key = "Browser";
  f.value = "firefox";
  CHECK(alert_filter_passes(f, facts("error", {{"browser", "Firefox"}})));
  CHECK_FALSE(alert_filter_passes(f, facts("error", {{"browser", "Chrome"}})));
  CHECK_FALSE(alert_filter_passes(f, facts("error", {{"os", "firefox"}})));

  auto obj = parse_alert_event_facts(
    R"({"level":"warning","tags":{"browser":"Firefox","n":3},)"
    R"("environment":"prod","release":"1.2"})");
  REQUIRE(obj);
  CHECK(obj->level == "warning");
  CHECK(alert_filter_passes(f, *obj));
  alert_filter env;
  env.kind = alert_filter::tag;
  env.key = "environment";
  env.value = "prod";
  CHECK(alert_filter_passes(env, *obj));
  env.key = "level";
  env.value = "warning";
  CHECK(alert_filter_passes(env, *obj));
  env.key = "n"; // not a string: not a tag
  env.value = "3";
  CHECK_FALSE(alert_filter_passes(env, *obj));

  auto list = parse_alert_event_facts(
    R"({"tags":[["browser","firefox"],["bad"],[1,"x"]]})");
  REQUIRE(list);
  CHECK(list->level == "error");
  CHECK(alert_filter_passes(f, *list));
  CHECK_FALSE(parse_alert_event_facts("[1]"));
  CHECK_FALSE(parse_alert_event_facts("{"));
}

TEST_CASE("alert rules: action-match and filter-match; filters read lazily",
          "[alert_rules]") {
  using k = alert_condition_kind;
  alert_rule r;
  r.conditions = {cond(k::first_seen), cond(k::regression)};
  alert_inputs in;
  int reads = 0;
  auto ev = facts("warning");
  in.event = [&]() -> caf::expected<const alert_event_facts*> {
    ++reads;
    return &ev;
  };
  in.is_new = true;
  CHECK_FALSE(*alert_rule_passes(r, in)); // all: regression fails
  r.action_match = alert_match::any;
  CHECK(*alert_rule_passes(r, in));
  r.filters = {level_filter(level_match::gte, 40)};
  CHECK(reads == 0);
  CHECK_FALSE(*alert_rule_passes(r, in)); // warning < error
  CHECK(reads == 1);
  r.filters.push_back(level_filter(level_match::eq, 30));
  r.filter_match = alert_match::any;
  CHECK(*alert_rule_passes(r, in));
  r.filter_match = alert_match::none;
  CHECK_FALSE(*alert_rule_passes(r, in));
  // Conditions that fail never read the event.
  in.is_new = false;
  reads = 0;
  CHECK_FALSE(*alert_rule_passes(r, in));
  CHECK(reads == 0);
  // An event that is not stored fails every filter.
  in.is_new = true;
  in.event = []() -> caf::expected<const alert_event_facts*> {
    return nullptr;
  };
  r.filter_match = alert_match::all;
  CHECK_FALSE(*alert_rule_passes(r, in));
}

TEST_CASE("alert rules: the timeline record's codec is kwargs-tolerant",
          "[alert_rules]") {
  alert_record r;
  r.event_id = std::string(32, 'e');
  r.project_id = 7;
  r.group_id = 42;
  r.rule_ids = {"default", "busy"};
  r.timestamp = 1700000000.5;
  CHECK(alert_timeline_key(7) == "mail:p:7");
  auto back = decode_alert_record(encode_alert_record(r));
  REQUIRE(back);
  CHECK(back->event_id == r.event_id);
  CHECK(back->project_id == 7);
  CHECK(back->group_id == 42);
  CHECK(back->rule_ids == r.rule_ids);
  CHECK(back->timestamp == 1700000000.5);
  // A newer writer's key is ignored; a missing one keeps its default.
  auto newer = decode_alert_record(encode_msgpack(value{value_map{
    {"event_id", value{"abc"}}, {"owner", value{"team"}}}}));
  REQUIRE(newer);
  CHECK(newer->event_id == "abc");
  CHECK(newer->rule_ids.empty());
  CHECK(newer->group_id == 0);
  CHECK_FALSE(decode_alert_record(
    encode_msgpack(value{value_map{{"group_id", value{1}}}})));
  CHECK_FALSE(decode_alert_record(encode_msgpack(value{value_map{
    {"event_id", value{"a"}}, {"rule_ids", value{"default"}}}})));
  CHECK_FALSE(decode_alert_record("\xc1"));
}

TEST_CASE("alert rules: is_regression in the task and the outbox record",
          "[alert_rules]") {
  post_process_batch b;
  b.queue = "events";
  b.tasks.push_back({"t1", "e1", 1, 5, false, true});
  b.tasks.push_back({"t2", "e2", 1, 6, true, false});
  auto back = decode_post_process_batch(encode_post_process_batch(b));
  REQUIRE(back);
  REQUIRE(back->tasks.size() == 2);
  CHECK(back->tasks[0].is_regression);
  CHECK_FALSE(back->tasks[1].is_regression);
  CHECK(back->tasks[1].is_new);

  auto task = make_post_process_task("events", "e1", 1, 5, false, "tid", true);
  CHECK_THAT(task.msg.kwargsrepr, Catch::Contains("'is_regression': True"));
  auto body = decode_task_body(task.msg.body, task.msg.content_type);
  REQUIRE(body);
  auto* flag = value{body->kwargs}.find("is_regression");
  REQUIRE(flag);
  CHECK(flag->as_bool());
  // Not a regression: the task's bytes are those of before.
  CHECK(encode_post_process_body("e1", 1, 5, false, false)
        == encode_post_process_body("e1", 1, 5, false));
  auto plain = make_post_process_task("events", "e1", 1, 5, false, "tid");
  CHECK(plain.msg.kwargsrepr.find("is_regression") == std::string::npos);
}

namespace {

stored_event event_of(const std::string& id, const std::string& hash,
                      const std::string& level = "error",
                      const std::string& tags = "{}") {
  stored_event ev;
  ev.event_id = id;
  ev.project_id = 1;
  ev.grouping_hash = hash;
  ev.title = "E: " + hash;
  ev.timestamp = 1700000000;
  ev.json = R"({"event_id":")" + id + R"(","level":")" + level
            + R"(","tags":)" + tags + "}";
  return ev;
}

// A node's post_process on a fresh SQLite database and memory TSDB, with
// a clock the test moves.
struct post_process_fixture {
  std::string db_url;
  std::unique_ptr<event_store> store;
  std::unique_ptr<tsdb_backend> tsdb;
  std::shared_ptr<capturing_alert_sink> sink
    = std::make_shared<capturing_alert_sink>();
  std::shared_ptr<event_task_services> svc
    = std::make_shared<event_task_services>();
  task_registry reg;
  double now = 1700000000;

  explicit post_process_fixture(std::vector<alert_rule> rules) {
    // Each fixture its own database and TSDB series.
    static int fixtures = 0;
    auto n = std::to_string(++fixtures);
    auto dir = vigil::testing::fresh_test_dir("vigil-unit-alert-rules-" + n);
    db_url = "sqlite://" + (dir / "vigil.db").string();
    store = std::move(event_store::open(db_url).value());
    alert_state_options o;
    o.db_url = db_url;
    o.tsdb.backend = "memory";
    o.tsdb.url = "memory://alert-rules-test-" + n;
    o.tsdb.clock = [this] { return static_cast<int64_t>(now); };
    tsdb = make_memory_tsdb(o.tsdb);
    svc->rules[1] = std::move(rules);
    svc->state = make_alert_state(o);
    svc->sink = sink;
    svc->clock = [this] { return now; };
    register_event_tasks(reg, svc);
  }

  group_outcome store_event(const stored_event& ev) {
    auto out = store->store_batch({ev});
    REQUIRE(out);
    return out->front();
  }

  task_result run(const stored_event& ev, const group_outcome& g) {
    value_map kwargs{{"event_id", value{ev.event_id}},
                     {"project_id", value{int64_t{1}}},
                     {"group_id", value{g.group_id}},
                     {"is_new", value{g.is_new}},
                     {"is_regression", value{g.is_regression}}};
    const auto* entry = reg.find("vigil.events.post_process");
    REQUIRE(entry);
    auto args = bind_arguments(entry->schema, {}, kwargs, 0);
    REQUIRE(args);
    task_message msg;
    return entry->fn(task_context{msg, *args});
  }

  // The rule ids of each record so far.
  std::vector<std::vector<std::string>> fired() const {
    std::vector<std::vector<std::string>> out;
    for (auto& [key, r] : sink->records()) {
      CHECK(key == "mail:p:1");
      out.push_back(r.rule_ids);
    }
    return out;
  }
};

using ids = std::vector<std::vector<std::string>>;

} // namespace

TEST_CASE("alert rules: the default rule fires once per new issue",
          "[alert_rules]") {
  post_process_fixture fx{{default_alert_rule()}};
  auto a1 = event_of(std::string(32, '1'), "a");
  auto g1 = fx.store_event(a1);
  CHECK(g1.is_new);
  CHECK(fx.run(a1, g1).kind == task_result::ok);
  CHECK(fx.fired() == ids{{"default"}});
  auto rec = fx.sink->records().front().second;
  CHECK(rec.event_id == a1.event_id);
  CHECK(rec.group_id == g1.group_id);
  CHECK(rec.timestamp == fx.now);
  // A redelivered task fires nothing more (GroupRuleStatus).
  fx.run(a1, g1);
  // The issue's next event is not new.
  auto a2 = event_of(std::string(32, '2'), "a");
  auto g2 = fx.store_event(a2);
  CHECK_FALSE(g2.is_new);
  fx.run(a2, g2);
  CHECK(fx.fired().size() == 1);
  // Another new issue fires again.
  auto b1 = event_of(std::string(32, '3'), "b");
  fx.run(b1, fx.store_event(b1));
  CHECK(fx.fired() == ids{{"default"}, {"default"}});
}

TEST_CASE("alert rules: a rule fires at most once per issue per frequency",
          "[alert_rules]") {
  alert_rule every;
  every.id = "every";
  every.conditions = {cond(alert_condition_kind::every_event)};
  every.frequency_minutes = 5;
  post_process_fixture fx{{every}};
  auto a1 = event_of(std::string(32, '1'), "a");
  auto g = fx.store_event(a1);
  fx.run(a1, g);
  fx.now += 299;
  fx.run(a1, g);
  CHECK(fx.fired().size() == 1);
  fx.now += 1; // 5 minutes after the firing
  fx.run(a1, g);
  CHECK(fx.fired().size() == 2);
  // The state is per group: another issue is not held back.
  auto b1 = event_of(std::string(32, '2'), "b");
  fx.run(b1, fx.store_event(b1));
  CHECK(fx.fired().size() == 3);
  // Two callers at the same instant: one takes the firing.
  auto& st = *fx.svc->state;
  fx.now += 1000;
  CHECK(*st.activate_rule(1, "x", g.group_id, fx.now, 60));
  CHECK_FALSE(*st.activate_rule(1, "x", g.group_id, fx.now, 60));
  CHECK(*st.activate_rule(1, "x", g.group_id, fx.now + 60, 60));
}

TEST_CASE("alert rules: regression after resolve; ignored issues stay quiet",
          "[alert_rules]") {
  alert_rule reg;
  reg.id = "regressed";
  reg.conditions = {cond(alert_condition_kind::regression)};
  post_process_fixture fx{{default_alert_rule(), reg}};
  auto a1 = event_of(std::string(32, '1'), "a");
  auto g1 = fx.store_event(a1);
  fx.run(a1, g1);
  CHECK(fx.fired() == ids{{"default"}});
  REQUIRE(*fx.store->set_group_status(g1.group_id, "resolved", fx.now));
  CHECK((*fx.store->get_group(g1.group_id))->status == "resolved");
  CHECK_FALSE(*fx.store->set_group_status(999, "resolved", fx.now));
  auto a2 = event_of(std::string(32, '2'), "a");
  auto g2 = fx.store_event(a2);
  CHECK(g2.is_regression);
  CHECK_FALSE(g2.is_new);
  CHECK((*fx.store->get_group(g1.group_id))->status == "unresolved");
  // A retry of that event is no second regression.
  CHECK_FALSE(fx.store_event(a2).is_regression);
  fx.run(a2, g2);
  CHECK(fx.fired() == ids{{"default"}, {"regressed"}});
  // An ignored issue fires nothing, whatever its rules say.
  REQUIRE(*fx.store->set_group_status(g1.group_id, "ignored", fx.now));
  auto a3 = event_of(std::string(32, '3'), "a");
  auto g3 = fx.store_event(a3);
  CHECK_FALSE(g3.is_regression);
  CHECK((*fx.store->get_group(g1.group_id))->status == "ignored");
  g3.is_regression = true; // as if it were
  fx.now += 3600;
  fx.run(a3, g3);
  CHECK(fx.fired().size() == 2);
}

TEST_CASE("alert rules: event_frequency from the TSDB, level and tag filters",
          "[alert_rules]") {
  alert_rule busy;
  busy.id = "busy";
  busy.conditions = {cond(alert_condition_kind::event_frequency, 2, 3600)};
  alert_rule loud;
  loud.id = "loud";
  loud.conditions = {cond(alert_condition_kind::every_event)};
  loud.filters = {level_filter(level_match::gte, 50)};
  alert_rule tagged;
  tagged.id = "tagged";
  tagged.conditions = {cond(alert_condition_kind::every_event)};
  alert_filter t;
  t.kind = alert_filter::tag;
  t.key = "customer";
  t.value = "vip";
  tagged.filters = {t};
  post_process_fixture fx{{busy, loud, tagged}};
  auto a1 = event_of(std::string(32, '1'), "a", "error");
  auto g = fx.store_event(a1);
  auto count = [&] {
    fx.tsdb->incr_multi({tsdb_incr{tsdb_model::group,
                                   tsdb_key::of(g.group_id),
                                   static_cast<int64_t>(fx.now), 1, {}}});
  };
  count();
  fx.run(a1, g);
  g.is_new = false; // the issue's later events
  count();
  fx.run(a1, g);
  CHECK(fx.fired().empty()); // 2 events: not more than 2
  count();
  fx.run(a1, g);
  CHECK(fx.fired() == ids{{"busy"}});
  // A fatal event with the tag passes both filters.
  auto a2 = event_of(std::string(32, '2'), "a", "fatal",
                     R"({"customer":"VIP"})");
  fx.run(a2, fx.store_event(a2));
  CHECK(fx.fired() == ids{{"busy"}, {"loud", "tagged"}});
}

TEST_CASE("alert rules: a sink that fails retries the task, firing undone",
          "[alert_rules]") {
  post_process_fixture fx{{default_alert_rule()}};
  auto a1 = event_of(std::string(32, '1'), "a");
  auto g = fx.store_event(a1);
  fx.sink->fail_next(1);
  CHECK(fx.run(a1, g).kind == task_result::retry);
  CHECK(fx.fired().empty());
  CHECK(fx.run(a1, g).kind == task_result::ok);
  CHECK(fx.fired() == ids{{"default"}});
  // A project without rules, or an event without an issue: nothing to do.
  fx.svc->rules.erase(1);
  fx.now += 7200;
  CHECK(fx.run(a1, g).kind == task_result::ok);
  CHECK(fx.fired().size() == 1);
}

TEST_CASE("alert rules: a regression with counts left to the write buffer",
          "[alert_rules]") {
  post_process_fixture fx{{default_alert_rule()}};
  auto a1 = event_of(std::string(32, '1'), "a");
  auto g = fx.store_event(a1);
  REQUIRE(*fx.store->set_group_status(g.group_id, "resolved", fx.now));
  std::vector<group_count> deferred;
  auto a2 = event_of(std::string(32, '2'), "a");
  auto a3 = event_of(std::string(32, '3'), "a");
  auto out = fx.store->store_batch({a2, a3}, nullptr, &deferred);
  REQUIRE(out);
  REQUIRE(out->size() == 2);
  // The batch's first event reopened the issue; its count is deferred.
  CHECK((*out)[0].is_regression);
  CHECK_FALSE((*out)[1].is_regression);
  REQUIRE(deferred.size() == 1);
  CHECK(deferred[0].times_seen == 2);
  CHECK((*fx.store->get_group(g.group_id))->status == "unresolved");
}
