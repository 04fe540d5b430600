// vigil bench charts' data generator: every body it makes for a built-in
// style renders (status 200, a PNG of the style's size), and the bodies
// have the sizes the bench promises (24-90 buckets, 1-5 series).

#include <catch2/catch.hpp>

#include <cstring>
#include <set>

#include <nlohmann/json.hpp>

#include "actors/chart_renderer.hpp"
#include "bench/bench_charts_data.hpp"
#include "messages/chart_series.hpp"
#include "messages/chart_style.hpp"

using namespace vigil;

TEST_CASE("the bench's generated bodies render in every built-in style",
          "[bench_charts][charts]") {
  auto cfg = parse_chart_config(builtin_chart_config_json());
  REQUIRE(cfg);
  auto styles = chart_bench_bodies(*cfg, 12, 7);
  REQUIRE(styles.size() == cfg->styles.size());
  for (auto& s : styles) {
    INFO(s.style);
    REQUIRE(s.bodies.size() == 12);
    auto& style = cfg->styles.at(s.style);
    std::set<size_t> series_counts;
    for (auto& b : s.bodies) {
      auto r = render_chart_body(&*cfg, b);
      INFO(r.body.substr(0, 200));
      REQUIRE(r.status == 200);
      REQUIRE(r.body.size() > 24);
      CHECK(std::memcmp(r.body.data(), "\x89PNG\r\n\x1a\n", 8) == 0);
      nlohmann::json data;
      auto req = parse_render_request(b, data);
      REQUIRE(req);
      CHECK(req->style == s.style);
      auto series = transform_chart_data(style, data);
      REQUIRE(series);
      series_counts.insert(series->size());
      CHECK(series->size() >= 1);
      CHECK(series->size() <= 5);
      for (auto& one : *series) {
        CHECK(one.points.size() >= 24);
        CHECK(one.points.size() <= 90);
      }
    }
    if (style.legend && style.transform == chart_transform::automatic)
      CHECK(series_counts.size() > 1); // top-N charts vary their series
  }
  // The same seed, the same bodies: the Node peer draws what vigil drew.
  CHECK(chart_bench_bodies(*cfg, 12, 7)[0].bodies == styles[0].bodies);
}

TEST_CASE("a style's JSON for the Node peer carries its resolved fields",
          "[bench_charts][charts]") {
  auto cfg = parse_chart_config(builtin_chart_config_json());
  REQUIRE(cfg);
  auto j = nlohmann::json::parse(
    chart_style_json(cfg->styles.at("slack:discover.top5Daily")));
  CHECK(j["kind"] == "stackedBar");
  CHECK(j["legend"] == true);
  CHECK(j["colors"].size() == 5);
  CHECK(j["colors"][0] == "#444674");
  CHECK(j["background"] == "#ffffff");
  CHECK(j["width"] == 450);
}

TEST_CASE("top events keep Sentry's order (legend first, stacked lowest)",
          "[charts]") {
  chart_style s;
  // Read as a JSON object, the names come sorted: "a" before "b".
  auto data = nlohmann::json::parse(R"({"stats": {
    "b": {"data": [[1, [{"count": 1}]]], "order": 0},
    "c": {"data": [[1, [{"count": 5}]]], "order": 2},
    "a": {"data": [[1, [{"count": 9}]]], "order": 1}}})");
  auto r = transform_chart_data(s, data);
  REQUIRE(r);
  REQUIRE(r->size() == 3);
  CHECK((*r)[0].name == "b");
  CHECK((*r)[1].name == "a");
  CHECK((*r)[2].name == "c");
}
