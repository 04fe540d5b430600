// Internal metrics: the wire formats (statsd, DogStatsD, Datadog series,
// logging, Prometheus text), datagram packing, Sentry's sampling rule, the
// metrics.options check, and the per-thread aggregation of actors/metrics.

#include <catch2/catch.hpp>

#include <algorithm>
#include <thread>

#include <nlohmann/json.hpp>

#include "actors/job_metrics.hpp"
#include "actors/metrics.hpp"
#include "config/config.hpp"
#include "config/metrics_options.hpp"
#include "messages/errors.hpp"
#include "messages/metrics_format.hpp"

using namespace vigil;

namespace {

metric_point counter(std::string key, double value, metric_tags tags = {},
                     double rate = 1) {
  metric_point p;
  p.kind = metric_kind::counter;
  p.key = std::move(key);
  p.value = value;
  p.tags = std::move(tags);
  p.rate = rate;
  return p;
}

metric_point observed(metric_kind kind, std::string key,
                      std::vector<double> xs) {
  metric_point p;
  p.kind = kind;
  p.key = std::move(key);
  for (auto x : xs)
    observe(p, x, 64, 0.5);
  return p;
}

std::vector<std::string> lines(const metric_point& p, statsd_flavor f,
                               const metric_tags& constant = {}) {
  std::vector<std::string> out;
  append_statsd_lines(out, p, "vigil.", f, constant);
  return out;
}

const metric_point* find(const std::vector<metric_point>& xs,
                         std::string_view key) {
  for (auto& p : xs)
    if (p.key == key)
      return &p;
  return nullptr;
}

} // namespace

TEST_CASE("Sentry's sampling rule: rate >= 1 or random >= 1 - rate",
          "[metrics]") {
  CHECK(should_sample(1, 0));
  CHECK(should_sample(2, 0));
  CHECK(should_sample(0.25, 0.75));
  CHECK_FALSE(should_sample(0.25, 0.7));
  CHECK_FALSE(should_sample(0, 0.99));
}

TEST_CASE("statsd lines: no tags, |@rate below 1, distribution as ms",
          "[metrics]") {
  auto c = counter("events.processed", 5, {{"project", "1"}});
  CHECK(lines(c, statsd_flavor::statsd)
        == std::vector<std::string>{"vigil.events.processed:5|c"});
  c.rate = 0.5;
  CHECK(lines(c, statsd_flavor::statsd)
        == std::vector<std::string>{"vigil.events.processed:5|c|@0.5"});
  auto t = observed(metric_kind::timing, "jobs.duration", {12.5, 3});
  CHECK(lines(t, statsd_flavor::statsd)
        == std::vector<std::string>{"vigil.jobs.duration:12.5|ms",
                                    "vigil.jobs.duration:3|ms"});
  auto d = observed(metric_kind::distribution, "ingest.batch", {7});
  CHECK(lines(d, statsd_flavor::statsd)
        == std::vector<std::string>{"vigil.ingest.batch:7|ms"});
  metric_point g;
  g.kind = metric_kind::gauge;
  g.key = "buffer.pending-size";
  g.value = 42;
  CHECK(lines(g, statsd_flavor::statsd)
        == std::vector<std::string>{"vigil.buffer.pending-size:42|g"});
  g.value = -3;
  // A leading '-' alone would be a delta to statsd.
  CHECK(lines(g, statsd_flavor::statsd)
        == std::vector<std::string>{"vigil.buffer.pending-size:0|g",
                                    "vigil.buffer.pending-size:-3|g"});
}

TEST_CASE("DogStatsD lines: |@rate then |#tags, constant tags last, |d",
          "[metrics]") {
  auto c = counter("jobs.finished", 2, {{"status", "success"}}, 0.25);
  CHECK(lines(c, statsd_flavor::dogstatsd, {{"env", "test"}})
        == std::vector<std::string>{
          "vigil.jobs.finished:2|c|@0.25|#status:success,env:test"});
  auto d = observed(metric_kind::distribution, "ingest.batch", {7});
  d.tags = {{"a|b", "x,y"}};
  CHECK(lines(d, statsd_flavor::dogstatsd)
        == std::vector<std::string>{"vigil.ingest.batch:7|d|#a_b:x_y"});
}

TEST_CASE("a bounded sample sends its lines at the kept share's rate",
          "[metrics]") {
  metric_point t;
  t.kind = metric_kind::timing;
  t.key = "t";
  for (int i = 0; i < 400; ++i)
    observe(t, i, 100, (i % 10) / 10.0);
  CHECK(t.count == 400);
  CHECK(t.samples.size() == 100);
  CHECK(t.min == 0);
  CHECK(t.max == 399);
  auto ls = lines(t, statsd_flavor::statsd);
  REQUIRE(ls.size() == 100);
  CHECK(ls[0].ends_with("|ms|@0.25"));
}

TEST_CASE("datagrams: lines joined by newlines up to the payload bound",
          "[metrics]") {
  std::vector<std::string> ls{"aaaa:1|c", "bbbb:1|c", "cccc:1|c",
                              std::string(50, 'x')};
  auto ds = pack_datagrams(ls, 17);
  REQUIRE(ds.size() == 3);
  CHECK(ds[0] == "aaaa:1|c\nbbbb:1|c");
  CHECK(ds[1] == "cccc:1|c");
  CHECK(ds[2].size() == 50); // too long for one: goes alone
  for (auto& d : pack_datagrams(std::vector<std::string>(500, "k:1|c"), 1432))
    CHECK(d.size() <= 1432);
}

TEST_CASE("Datadog series v1: counts scaled by the rate, timings as "
          "aggregates, tags as k:v",
          "[metrics]") {
  std::vector<metric_point> ps{
    counter("events.processed", 3, {{"project", "1"}}, 0.5),
    observed(metric_kind::timing, "jobs.duration", {10, 20, 30})};
  auto doc = nlohmann::json::parse(
    datadog_series_json(ps, "vigil.", {{"env", "ci"}}, 1700000000.7, 10, "h"));
  auto& s = doc.at("series");
  REQUIRE(s.size() == 6);
  CHECK(s[0]["metric"] == "vigil.events.processed");
  CHECK(s[0]["type"] == "count");
  CHECK(s[0]["interval"] == 10);
  CHECK(s[0]["points"][0][0] == 1700000000);
  CHECK(s[0]["points"][0][1] == 6.0);
  CHECK(s[0]["host"] == "h");
  CHECK(s[0]["tags"] == nlohmann::json{"project:1", "env:ci"});
  CHECK(s[1]["metric"] == "vigil.jobs.duration.avg");
  CHECK(s[1]["points"][0][1] == 20.0);
  CHECK(s[2]["metric"] == "vigil.jobs.duration.max");
  CHECK(s[5]["metric"] == "vigil.jobs.duration.count");
  CHECK(s[5]["points"][0][1] == 3.0);
}

TEST_CASE("the logging line has Sentry's '%r: %+g' shape", "[metrics]") {
  CHECK(metric_log_line(counter("events.processed", 5), "vigil.")
        == "'vigil.events.processed': +5");
  CHECK(metric_log_line(counter("x", 1, {{"status", "ok"}}), "")
        == "'x': +1 tags {status: ok}");
  CHECK(metric_log_line(observed(metric_kind::timing, "t", {2, 4}), "")
        == "'t': 3 ms (mean of 2, max 4)");
}

TEST_CASE("Prometheus names: dots and dashes to underscores", "[metrics]") {
  CHECK(prometheus_name("vigil.buffer.pending-size")
        == "vigil_buffer_pending_size");
  CHECK(prometheus_name("9lives") == "_9lives");
  CHECK(prometheus_name("a:b", true) == "a_b");
}

TEST_CASE("Prometheus text: counters _total, gauges, histograms with "
          "cumulative buckets, _sum and _count",
          "[metrics]") {
  prometheus_state st;
  st.add(counter("events.processed", 2, {{"project", "1"}}), "vigil.");
  st.add(counter("events.processed", 3, {{"project", "1"}}), "vigil.");
  st.add(counter("jobs.started", 1, {}, 0.5), "vigil.");
  metric_point g;
  g.kind = metric_kind::gauge;
  g.key = "actors.mailbox_size";
  g.value = 4;
  g.tags = {{"actor", "tasks \"w\""}};
  st.add(g, "vigil.");
  st.add(observed(metric_kind::timing, "jobs.duration", {0.5, 40, 70000}),
         "vigil.");
  auto text = st.render();
  CHECK(text.find("# TYPE vigil_events_processed_total counter\n")
        != std::string::npos);
  CHECK(text.find("vigil_events_processed_total{project=\"1\"} 5\n")
        != std::string::npos);
  CHECK(text.find("vigil_jobs_started_total 2\n") != std::string::npos);
  CHECK(text.find("vigil_actors_mailbox_size{actor=\"tasks \\\"w\\\"\"} 4\n")
        != std::string::npos);
  CHECK(text.find("# TYPE vigil_jobs_duration_seconds histogram\n")
        != std::string::npos);
  CHECK(text.find("vigil_jobs_duration_seconds_bucket{le=\"0.001\"} 1\n")
        != std::string::npos);
  CHECK(text.find("vigil_jobs_duration_seconds_bucket{le=\"0.05\"} 2\n")
        != std::string::npos);
  CHECK(text.find("vigil_jobs_duration_seconds_bucket{le=\"+Inf\"} 3\n")
        != std::string::npos);
  CHECK(text.find("vigil_jobs_duration_seconds_count 3\n")
        != std::string::npos);
  CHECK(text.find("vigil_jobs_duration_seconds_sum 70.0405\n")
        != std::string::npos);
  CHECK(text.find("# HELP vigil_jobs_duration_seconds ") != std::string::npos);
  // A gauge named as a counter's family is skipped, not mixed in.
  metric_point clash;
  clash.kind = metric_kind::gauge;
  clash.key = "events.processed_total";
  st.add(clash, "vigil.");
  CHECK(st.clashes() == 1);
}

TEST_CASE("metrics.options: names, ranges and tags checked, the api-key "
          "never quoted",
          "[metrics]") {
  metrics_config c;
  CHECK(!parse_metrics_options(
    YAML::Load("{host: statsd.local, port: 9125, tags: {env: ci}, "
               "api-key: s3cret, site: datadoghq.eu}"),
    c));
  CHECK(c.host == "statsd.local");
  CHECK(c.port == 9125);
  CHECK(c.api_key == "s3cret");
  CHECK(c.site == "datadoghq.eu");
  REQUIRE(c.tags.size() == 1);
  CHECK(c.tags[0] == std::pair<std::string, std::string>{"env", "ci"});
  CHECK(!parse_metrics_options(YAML::Load("{tags: ['a:b', c]}"), c));
  CHECK(c.tags.size() == 2);
  auto err = parse_metrics_options(YAML::Load("{port: 70000}"), c);
  CHECK(error_text(err).find("port: expected an integer in [1, 65535], got "
                             "'70000'")
        != std::string::npos);
  err = parse_metrics_options(YAML::Load("{prot: 1}"), c);
  CHECK(error_text(err).find("unknown option 'prot'") != std::string::npos);
  err = parse_metrics_options(YAML::Load("{api-key: [s3cret]}"), c);
  CHECK(error_text(err).find("api-key: expected a string")
        != std::string::npos);
  CHECK(error_text(err).find("s3cret") == std::string::npos);
  err = parse_metrics_options(YAML::Load("{url: ftp://x}"), c);
  CHECK(error_text(err).find("url: expected an http") != std::string::npos);
}

TEST_CASE("aggregation: counters summed, gauges last, timings observed, "
          "across threads; off records nothing",
          "[metrics]") {
  metrics::configure(false);
  metrics::incr("test.off");
  metrics::configure(true, 1);
  CHECK(find(metrics::collect(), "test.off") == nullptr);
  metrics::incr("test.c", 2, {{"k", "v"}});
  metrics::incr("test.c", 3, {{"k", "v"}});
  metrics::incr("test.c", 1, {{"k", "w"}});
  std::thread other([] {
    metrics::incr("test.c", 10, {{"k", "v"}});
    metrics::gauge("test.g", 1);
  });
  other.join(); // its table goes to the orphans as the thread ends
  metrics::gauge("test.g", 7);
  metrics::timing("test.t", 5);
  metrics::timing("test.t", 15);
  metrics::distribution("test.d", 3);
  auto points = metrics::collect();
  double v = 0, w = 0;
  for (auto& p : points)
    if (p.key == "test.c")
      (p.tags[0].second == "v" ? v : w) = p.value;
  CHECK(v == 15);
  CHECK(w == 1);
  REQUIRE(find(points, "test.g"));
  CHECK(find(points, "test.g")->value == 7);
  REQUIRE(find(points, "test.t"));
  CHECK(find(points, "test.t")->count == 2);
  CHECK(find(points, "test.t")->sum == 20);
  CHECK(find(points, "test.d")->kind == metric_kind::distribution);
  // Collected once: the next interval starts empty.
  CHECK(metrics::collect().empty());
  // A sample rate of 0.0001 keeps few calls, and marks the ones it keeps.
  for (int i = 0; i < 100; ++i)
    metrics::incr("test.sampled", 1, {}, 0.0001);
  auto sampled = metrics::collect();
  for (auto& p : sampled)
    CHECK(p.rate == 0.0001);
  metrics::configure(false);
}

TEST_CASE("job metrics: a batch's runs recorded once per task name",
          "[metrics]") {
  metrics::configure(true, 1);
  metrics::collect();
  {
    job_metrics jobs;
    for (auto kind : {outcome_kind::success, outcome_kind::retry,
                      outcome_kind::success}) {
      jobs.start("vigil.ping");
      jobs.finish(kind);
    }
    jobs.start("vigil.echo");
    jobs.finish(outcome_kind::dead_letter);
  }
  auto points = metrics::collect();
  metrics::configure(false);
  auto value = [&](std::string_view key, metric_tags tags) {
    for (auto& p : points)
      if (p.key == key && p.tags == tags)
        return p.kind == metric_kind::timing ? static_cast<double>(p.count)
                                             : p.value;
    return -1.0;
  };
  CHECK(value("jobs.started", {{"task", "vigil.ping"}}) == 3);
  CHECK(value("jobs.duration", {{"task", "vigil.ping"}}) == 3);
  CHECK(value("jobs.finished", {{"task", "vigil.ping"}, {"status", "success"}})
        == 2);
  CHECK(value("jobs.retried", {{"task", "vigil.ping"}}) == 1);
  CHECK(value("jobs.finished",
              {{"task", "vigil.echo"}, {"status", "dead_letter"}})
        == 1);
}

TEST_CASE("the metrics keys load: defaults, overrides, datadog needs an "
          "api-key",
          "[metrics]") {
  auto defaults = config::from_yaml("", {});
  REQUIRE(defaults);
  auto mc = read_metrics_config(*defaults);
  REQUIRE(mc);
  CHECK(mc->backend == "dummy");
  CHECK(mc->prefix == "vigil.");
  CHECK(mc->interval == 1);
  CHECK(mc->port == 8125);
  auto dd = config::from_yaml("metrics.backend: datadog\n"
                              "metrics.options: {api-key: k}\n",
                              {});
  REQUIRE(dd);
  CHECK(read_metrics_config(*dd)->interval == 10);
  auto nokey = config::from_yaml("metrics.backend: datadog\n", {});
  REQUIRE_FALSE(nokey);
  CHECK(error_text(nokey.error()).find("api-key: required")
        != std::string::npos);
  auto rate = config::from_yaml("metrics.sample-rate: 2\n", {});
  REQUIRE_FALSE(rate);
  CHECK(error_text(rate.error()).find("metrics.sample-rate")
        != std::string::npos);
}
