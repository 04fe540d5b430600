// cron.schedule: entries read from the configuration (and the problems
// `vigil config validate` reports), interval and crontab ticks, the
// no-burst policy, and the task messages the scheduler sends.

#include <catch2/catch.hpp>

#include <map>
#include <random>
#include <set>
#include <string>

#include "config/config.hpp"
#include "config/cron_schedule.hpp"
#include "messages/clock.hpp"
#include "messages/errors.hpp"
#include "messages/json_codec.hpp"
#include "messages/task_body.hpp"
#include "node/node.hpp"

using namespace vigil;
using Catch::Matchers::Contains;

namespace {

using env_map = std::map<std::string, std::string>;

int64_t at(const std::string& iso) {
  auto us = parse_iso8601(iso);
  REQUIRE(us);
  return *us / 1000;
}

std::vector<cron_entry> entries_of(const std::string& yaml) {
  auto cfg = config::from_yaml(yaml, {});
  INFO(yaml << "\n" << (cfg ? "" : error_text(cfg.error())));
  REQUIRE(cfg);
  auto entries = cron_schedule_from_config(*cfg);
  REQUIRE(entries);
  return *entries;
}

// The problems of `yaml`, one per line.
std::string problems(const std::string& yaml, const env_map& env = {}) {
  std::string out;
  for (auto& p : config::validate(yaml, env))
    out += p.message + "\n";
  return out;
}

// The only problem of a schedule made of one entry with `body` (indented
// map lines after "- ").
std::string entry_problem(const std::string& body) {
  auto yaml = "cron.schedule:\n  - " + body + "\n";
  auto ps = config::validate(yaml, {});
  INFO(yaml);
  INFO(problems(yaml));
  REQUIRE(ps.size() == 1);
  CHECK(ps[0].key == "cron.schedule");
  return ps[0].message;
}

cron_timing every(int64_t ms) {
  cron_timing t;
  t.every_ms = ms;
  return t;
}

cron_timing cron(const std::string& expr) {
  auto c = parse_crontab(expr);
  REQUIRE(c);
  cron_timing t;
  t.cron = *c;
  return t;
}

} // namespace

TEST_CASE("cron.schedule: entries in Sentry's shape", "[cron]") {
  auto entries = entries_of(R"(
cron.schedule:
  - name: flush-buffers
    task: vigil.buffer.process_pending
    every: 10
    options: {queue: celery, expires: 10}
    kwargs: {}
  - name: nightly
    task: sentry.tasks.cleanup
    crontab: "0 3 * * MON-FRI"
    kwargs: {days: 30, dry: false, ratio: 0.5, note: "10", none: ~, list: [1, x]}
    args: [1, "two", 3.0]
  - name: fast
    task: vigil.ping
    every: 0.25
)");
  REQUIRE(entries.size() == 3);
  auto& a = entries[0];
  CHECK(a.name == "flush-buffers");
  CHECK(a.task == "vigil.buffer.process_pending");
  CHECK(a.timing.every_ms == 10000);
  CHECK(!a.timing.cron);
  CHECK(a.queue == "celery");
  CHECK(a.expires == 10.0);
  CHECK(a.kwargs.empty());
  CHECK(a.args.empty());
  CHECK(a.timing.describe() == "every 10 s");

  auto& b = entries[1];
  CHECK(b.timing.every_ms == 0);
  REQUIRE(b.timing.cron);
  CHECK(b.timing.cron->text == "0 3 * * MON-FRI");
  CHECK(b.timing.describe() == "crontab '0 3 * * MON-FRI' (UTC)");
  CHECK(b.queue.empty());
  CHECK(b.expires == 0.0);
  // Plain YAML scalars resolve to numbers, booleans and null; quoted ones
  // stay strings.
  CHECK(to_repr(value{b.kwargs})
        == "{'days': 30, 'dry': False, 'ratio': 0.5, 'note': '10', "
           "'none': None, 'list': [1, 'x']}");
  CHECK(to_repr(value{b.args}) == "[1, 'two', 3.0]");

  CHECK(entries[2].timing.every_ms == 250);
  CHECK(entries[2].timing.describe() == "every 0.25 s");

  // Nested sections work like flat keys; no schedule is an empty one.
  CHECK(entries_of("cron:\n  schedule:\n    - {name: x, task: t, every: 1}\n")
          .size()
        == 1);
  CHECK(entries_of("").empty());
  CHECK(entries_of("cron.schedule: []\n").empty());
}

TEST_CASE("cron.schedule: bad entries are named with their key", "[cron]") {
  CHECK(entry_problem("{name: a, every: 10}")
        == "cron.schedule: entry 1 ('a'): missing 'task' (the task name to "
           "send, e.g. vigil.ping)");
  CHECK(entry_problem("{name: a, task: t}")
        == "cron.schedule: entry 1 ('a'): missing 'every' (seconds) or "
           "'crontab' (minute hour day-of-month month day-of-week)");
  CHECK(entry_problem("{name: a, task: t, every: 5, crontab: '* * * * *'}")
        == "cron.schedule: entry 1 ('a'): give either 'every' or 'crontab', "
           "not both");
  CHECK(entry_problem("{name: a, task: t, every: 0}")
        == "cron.schedule: entry 1 ('a'): every: expected a number of "
           "seconds > 0, got '0'");
  CHECK_THAT(entry_problem("{name: a, task: t, every: -3}"),
             Contains("every: expected a number of seconds > 0, got '-3'"));
  CHECK_THAT(entry_problem("{name: a, task: t, every: soon}"),
             Contains("got 'soon'"));
  CHECK_THAT(entry_problem("{name: a, task: t, every: '10'}"),
             Contains("every: expected a number of seconds > 0"));
  CHECK_THAT(entry_problem("{name: a, task: t, every: 0.0001}"),
             Contains("every: expected between 0.001 and 1e9 seconds"));
  CHECK(entry_problem("{name: a, task: t, crontab: '61 * * * *'}")
        == "cron.schedule: entry 1 ('a'): crontab '61 * * * *': minute "
           "field '61': 61 is out of range 0-59");
  CHECK_THAT(entry_problem("{name: a, task: t, crontab: '* * * *'}"),
             Contains("crontab '* * * *': expected 5 fields"));
  CHECK_THAT(entry_problem("{name: a, task: t, crontab: '0 0 31 apr *'}"),
             Contains("crontab '0 0 31 apr *' never fires"));
  CHECK_THAT(entry_problem("{name: a, task: t, crontab: [1, 2]}"),
             Contains("crontab: expected an expression like"));
  CHECK(entry_problem("{name: a, task: t, evry: 10}")
        == "cron.schedule: entry 1 ('a'): unknown key 'evry' (did you mean "
           "'every'?); entry 1 ('a'): missing 'every' (seconds) or 'crontab' "
           "(minute hour day-of-month month day-of-week)");
  CHECK_THAT(entry_problem("{name: a, task: t, every: 1, schedule: 5}"),
             Contains("unknown key 'schedule' (expected one of name, task, "
                      "every, crontab, options, kwargs, args)"));
  CHECK_THAT(entry_problem("{name: a, task: t, every: 1, options: {queu: x}}"),
             Contains("options: unknown option 'queu' (did you mean "
                      "'queue'?)"));
  CHECK_THAT(entry_problem("{name: a, task: t, every: 1, options: {expires: 0}}"),
             Contains("options.expires: expected a number of seconds > 0"));
  CHECK_THAT(entry_problem("{name: a, task: t, every: 1, options: [q]}"),
             Contains("options: expected a map (queue, expires), got a list"));
  CHECK_THAT(entry_problem("{name: a, task: t, every: 1, kwargs: [1]}"),
             Contains("kwargs: expected a map, got a list"));
  CHECK_THAT(entry_problem("{name: a, task: t, every: 1, args: {x: 1}}"),
             Contains("args: expected a list, got a map"));
  CHECK(entry_problem("{task: t, every: 1}")
        == "cron.schedule: entry 1: missing 'name'");
  CHECK_THAT(entry_problem("{name: [x], task: t, every: 1}"),
             Contains("name: expected a non-empty string, got a list"));
  CHECK(entry_problem("just-a-string")
        == "cron.schedule: entry 1: expected a map with name, task and every "
           "or crontab, got 'just-a-string'");

  // Every problem of every entry, in one message for the key.
  auto text = problems(R"(
cron.schedule:
  - {name: a, task: t, every: 1}
  - {name: a, task: t, every: 2}
  - {name: b, every: 2}
)");
  CHECK(text
        == "cron.schedule: entry 2 ('a'): the name 'a' is used by an earlier "
           "entry; entry 3 ('b'): missing 'task' (the task name to send, "
           "e.g. vigil.ping)\n");
  CHECK(problems("cron.schedule: {a: 1}\n")
        == "cron.schedule: expected a list of entries (each with name, task "
           "and every or crontab), got a map\n");
  // From the environment, too.
  CHECK_THAT(problems("", {{"VIGIL_CRON_SCHEDULE", "a,b"}}),
             Contains("VIGIL_CRON_SCHEDULE (cron.schedule): entry 1: expected "
                      "a map"));
  CHECK(problems("", {{"VIGIL_CRON_SCHEDULE",
                       "[{name: x, task: t, crontab: '@hourly'}]"}})
          .empty());
  // And loading fails the same way.
  auto cfg = config::from_yaml("cron.schedule: [{name: a, task: t}]\n", {});
  REQUIRE(!cfg);
  CHECK_THAT(error_text(cfg.error()), Contains("cron.schedule: entry 1 ('a')"));
}

TEST_CASE("cron keys: lock url, ttl and where the lock lives", "[cron]") {
  auto defaults = config::defaults();
  CHECK(!defaults.is_set("cron.lock-url"));
  CHECK(defaults.get_double("cron.lock-ttl") == 5.0);
  CHECK(defaults.get_node("cron.schedule").IsSequence());
  CHECK_THAT(problems("cron.lock-url: amqp://h/v\n"),
             Contains("cron.lock-url: unsupported URL scheme 'amqp'"));
  CHECK_THAT(problems("cron.lock-ttl: 0\n"),
             Contains("cron.lock-ttl: expected a number between 0.2 and 3600"));

  auto options = [](const std::string& yaml) {
    auto cfg = config::from_yaml(yaml, {});
    REQUIRE(cfg);
    auto o = make_cron_options(*cfg);
    REQUIRE(o);
    return *o;
  };
  // memory:// and no lock url: alone, no lock.
  auto alone = options("cron.schedule: [{name: a, task: t, every: 1}]\n");
  CHECK(alone.lock_url.empty());
  // The entry, the write buffer's flush-buffers (buffer.flush-interval)
  // and the digests' schedule-digests (digests.schedule-interval).
  REQUIRE(alone.entries.size() == 3);
  CHECK(alone.entries[1].name == "flush-buffers");
  CHECK(alone.entries[1].timing.every_ms == 10000);
  CHECK(alone.entries[1].queue == "buffers.process_pending");
  CHECK(alone.entries[2].name == "schedule-digests");
  CHECK(alone.entries[2].timing.every_ms == 30000);
  CHECK(alone.entries[2].queue == "digests.scheduling");
  CHECK(options("buffer.flush-interval: 0\ndigests.backend: dummy\n")
          .entries.empty());
  CHECK(options("cron.schedule: [{name: flush-buffers, task: t, every: 60}]\n"
                "digests.backend: dummy\n")
          .entries.size() == 1);
  CHECK(alone.default_queue == "celery");
  CHECK(alone.lock_ttl == std::chrono::milliseconds{5000});
  // A Redis broker holds the lock by default.
  CHECK(options("broker.url: redis://h:1/2\n").lock_url == "redis://h:1/2");
  // cron.lock-url wins.
  auto o = options("broker.url: redis://h:1/2\ncron.lock-url: redis://l/3\n"
                   "cron.lock-ttl: 1.5\ntasks.default-queue: q\n");
  CHECK(o.lock_url == "redis://l/3");
  CHECK(o.lock_ttl == std::chrono::milliseconds{1500});
  CHECK(o.default_queue == "q");
  // An AMQP broker has no lock of its own.
  CHECK(options("broker.url: amqp://u:p@h/v\n").lock_url.empty());
  CHECK(options("broker.url: amqp://u:p@h/v\ncron.lock-url: redis://l/3\n")
          .lock_url
        == "redis://l/3");
}

TEST_CASE("cron: interval ticks are multiples since the epoch", "[cron]") {
  auto t = every(10000);
  CHECK(t.tick_at_or_before(105000) == 100000);
  CHECK(t.tick_at_or_before(100000) == 100000);
  CHECK(t.tick_after(100000) == 110000);
  CHECK(t.tick_after(109999) == 110000);
  CHECK(t.tick_at_or_before(-1) == -10000);
  auto half = every(500);
  CHECK(half.tick_after(1200) == 1500);
  CHECK(half.tick_at_or_before(1200) == 1000);
  auto c = cron("*/5 * * * *");
  CHECK(c.tick_after(at("2024-01-01T00:00:00Z")) == at("2024-01-01T00:05:00Z"));
  CHECK(c.tick_at_or_before(at("2024-01-01T00:04:59Z"))
        == at("2024-01-01T00:00:00Z"));
}

TEST_CASE("cron: the no-burst policy", "[cron]") {
  SECTION("interval") {
    auto t = every(10000);
    // Not due yet.
    auto d = decide_fire(t, 100000, 105000);
    CHECK(!d.fire);
    CHECK(d.next == 110000);
    CHECK(d.skipped == 0);
    // Due: the tick fires, once.
    d = decide_fire(t, 100000, 110000);
    CHECK(d.fire == 110000);
    CHECK(d.skipped == 0);
    CHECK(d.next == 120000);
    CHECK(!decide_fire(t, 110000, 110000).fire);
    CHECK(!decide_fire(t, 110000, 119999).fire);
    // Late by a bit: still that tick.
    CHECK(decide_fire(t, 100000, 117000).fire == 110000);
    // After a downtime: only the latest tick, the missed ones counted.
    d = decide_fire(t, 100000, 165000);
    CHECK(d.fire == 160000);
    CHECK(d.skipped == 5);
    CHECK(d.next == 170000);
    // A new entry (last = when watching started) waits for its next tick.
    CHECK(!decide_fire(t, 103000, 105000).fire);
    CHECK(decide_fire(t, 103000, 110000).fire == 110000);
    CHECK(decide_fire(t, 103000, 110000).skipped == 0);
    // Started exactly on a tick: that tick is not the next one.
    CHECK(!decide_fire(t, 100000, 100000).fire);
    // A clock that went back never fires a tick again.
    CHECK(!decide_fire(t, 200000, 150000).fire);
    // A long downtime's count is capped.
    CHECK(decide_fire(every(1), 0, 1000000000).skipped == 10000);
  }
  SECTION("crontab") {
    auto t = cron("*/5 * * * *");
    auto d = decide_fire(t, at("2024-01-01T12:00:00Z"), at("2024-01-01T12:17:30Z"));
    CHECK(d.fire == at("2024-01-01T12:15:00Z"));
    CHECK(d.skipped == 2); // 12:05 and 12:10
    CHECK(d.next == at("2024-01-01T12:20:00Z"));
    CHECK(!decide_fire(t, at("2024-01-01T12:15:00Z"), at("2024-01-01T12:19:59Z"))
             .fire);
    auto daily = cron("0 3 * * *");
    d = decide_fire(daily, at("2024-01-01T03:00:00Z"), at("2024-01-05T10:00:00Z"));
    CHECK(d.fire == at("2024-01-05T03:00:00Z"));
    CHECK(d.skipped == 3);
    CHECK(d.next == at("2024-01-06T03:00:00Z"));
    // First start at 15:00: yesterday's 03:00 is not sent.
    d = decide_fire(daily, at("2024-01-05T15:00:00Z"), at("2024-01-05T15:00:01Z"));
    CHECK(!d.fire);
    CHECK(d.next == at("2024-01-06T03:00:00Z"));
  }
  SECTION("a simulated scheduler sends each tick at most once, in order") {
    std::mt19937_64 rng{42};
    for (auto timing : {every(1000), every(7000), cron("* * * * *"),
                        cron("*/3 * * * 1-5")}) {
      int64_t start = at("2024-03-01T00:00:00Z") + 1234;
      int64_t last = start;
      int64_t now = start;
      std::set<int64_t> sent;
      std::vector<int64_t> order;
      uint64_t skipped = 0;
      for (int step = 0; step < 2000; ++step) {
        // Mostly small steps, now and then a downtime.
        auto gap = rng() % 50 == 0 ? static_cast<int64_t>(rng() % 3600000)
                                   : static_cast<int64_t>(rng() % 20000);
        now += gap;
        auto d = decide_fire(timing, last, now);
        if (d.fire) {
          CHECK(*d.fire <= now);
          CHECK(*d.fire > last);
          CHECK(sent.insert(*d.fire).second);
          order.push_back(*d.fire);
          last = *d.fire;
          skipped += d.skipped;
        }
        REQUIRE(d.next);
        CHECK(*d.next > now);
      }
      CHECK(std::is_sorted(order.begin(), order.end()));
      // Every tick in the span was either sent or skipped.
      uint64_t ticks = 0;
      for (auto t = timing.tick_after(start); t && *t <= last;
           t = timing.tick_after(*t))
        ++ticks;
      CHECK(ticks == sent.size() + skipped);
    }
  }
}

TEST_CASE("cron: the task message of a firing", "[cron]") {
  auto entries = entries_of(R"(
cron.schedule:
  - name: flush
    task: vigil.echo
    every: 10
    options: {queue: buffers, expires: 10}
    args: [hello]
    kwargs: {n: 2}
  - name: plain
    task: vigil.ping
    crontab: "@hourly"
)");
  int64_t now_us = 1709175600123456;
  auto out = make_cron_task(entries[0], 1709175600000, now_us, "celery",
                            "vigil@host");
  CHECK(out.queue == "buffers");
  auto& msg = out.msg;
  CHECK(msg.task == "vigil.echo");
  CHECK(msg.id.size() == 36);
  CHECK(msg.root_id == msg.id);
  CHECK(msg.correlation_id == msg.id);
  CHECK(msg.origin == "vigil@host");
  CHECK(msg.eta_us == 0);
  CHECK(msg.expires_us == now_us + 10000000);
  CHECK(msg.argsrepr == "['hello']");
  CHECK(msg.kwargsrepr == "{'n': 2}");
  auto body = decode_task_body(msg.body, msg.content_type);
  REQUIRE(body);
  CHECK(to_repr(value{body->args}) == "['hello']");
  CHECK(to_repr(value{body->kwargs}) == "{'n': 2}");
  auto headers = decode_json(msg.extra_headers);
  REQUIRE(headers);
  REQUIRE(headers->find("vigil_cron_entry"));
  CHECK(headers->find("vigil_cron_entry")->as_text() == "flush");
  REQUIRE(headers->find("vigil_cron_tick"));
  CHECK(headers->find("vigil_cron_tick")->as_int() == 1709175600000);

  auto other = make_cron_task(entries[1], 1709175600000, now_us, "celery",
                              "vigil@host");
  CHECK(other.queue == "celery");
  CHECK(other.msg.expires_us == 0);
  CHECK(other.msg.id != msg.id);
  CHECK(other.msg.argsrepr == "[]");
  CHECK(other.msg.kwargsrepr == "{}");
}
