// Chart styles as data, the transformations of Sentry's data shapes into
// series, the axis labels (k/M), and one render through cairo.

#include <catch2/catch.hpp>

#include <cstring>
#include <string>

#include <nlohmann/json.hpp>

#include "actors/chart_painter.hpp"
#include "actors/chart_renderer.hpp"
#include "messages/chart_format.hpp"
#include "messages/chart_series.hpp"
#include "messages/chart_style.hpp"
#include "messages/errors.hpp"

using namespace vigil;

namespace {

uint32_t be32(const std::string& s, size_t at) {
  auto b = [&](size_t i) { return static_cast<uint32_t>(
                             static_cast<unsigned char>(s[at + i])); };
  return b(0) << 24 | b(1) << 16 | b(2) << 8 | b(3);
}

} // namespace

TEST_CASE("format_count uses k, M and B suffixes", "[charts]") {
  CHECK(format_count(0) == "0");
  CHECK(format_count(7) == "7");
  CHECK(format_count(950) == "950");
  CHECK(format_count(999) == "999");
  CHECK(format_count(1000) == "1k");
  CHECK(format_count(1200) == "1.2k");
  CHECK(format_count(1260) == "1.3k");
  CHECK(format_count(35000) == "35k");
  CHECK(format_count(999999) == "1M");
  CHECK(format_count(1500000) == "1.5M");
  CHECK(format_count(2e9) == "2B");
  CHECK(format_count(-1500) == "-1.5k");
  CHECK(format_count(2.5) == "2.5");
  CHECK(format_number(0.126) == "0.13");
  CHECK(format_number(3) == "3");
}

TEST_CASE("nice_ticks picks round steps up to the peak", "[charts]") {
  CHECK(nice_ticks(0) == std::vector<double>{0, 1});
  CHECK(nice_ticks(10, 2) == std::vector<double>{0, 5, 10});
  CHECK(nice_ticks(7, 3) == std::vector<double>{0, 2.5, 5, 7.5});
  auto t = nice_ticks(1234, 3);
  CHECK(t.front() == 0);
  CHECK(t.back() >= 1234);
  CHECK(t.size() <= 5);
}

TEST_CASE("time labels switch from hours to days past two days",
          "[charts]") {
  // 2026-12-03 16:30:00 UTC
  CHECK(format_time_label(1796315400, 86400) == "16:30");
  CHECK(format_time_label(1796315400, 7 * 86400) == "Dec 3");
}

TEST_CASE("the built-in configuration parses with every style",
          "[charts]") {
  auto cfg = parse_chart_config(builtin_chart_config_json());
  REQUIRE(cfg);
  CHECK(cfg->version == "vigil-builtin-1");
  for (auto name : {"slack:discover.totalPeriod", "slack:discover.totalDaily",
                    "slack:discover.top5Period",
                    "slack:discover.top5PeriodLine",
                    "slack:discover.top5Daily",
                    "slack:discover.previousPeriod",
                    "vigil:issue.eventsOverTime", "vigil:project.received"}) {
    INFO(name);
    REQUIRE(cfg->styles.count(name) == 1);
    CHECK(cfg->styles.at(name).width == 450);
    CHECK(cfg->styles.at(name).height == 150);
  }
  CHECK(cfg->styles.at("slack:discover.totalDaily").kind == chart_kind::bar);
  CHECK(cfg->styles.at("slack:discover.top5Daily").kind
        == chart_kind::stacked_bar);
  CHECK(cfg->styles.at("slack:discover.previousPeriod").transform
        == chart_transform::previous_period);
}

TEST_CASE("style parsing names what is wrong", "[charts]") {
  auto bad = [](std::string doc) {
    auto r = parse_chart_config(doc);
    REQUIRE(!r);
    return error_text(r.error());
  };
  CHECK(bad("nope").find("not valid JSON") != std::string::npos);
  CHECK(bad(R"({"styles": {"a": {}}})").find("version") != std::string::npos);
  CHECK(bad(R"({"version": "1", "styles": {}})").find("styles")
        != std::string::npos);
  CHECK(bad(R"({"version": "1", "styles": {"a": {"kind": "pie"}}})")
          .find("style 'a': kind") != std::string::npos);
  CHECK(bad(R"({"version": "1", "styles": {"a": {"colors": ["red"]}}})")
          .find("colors") != std::string::npos);
  CHECK(bad(R"({"version": "1", "styles": {"a": {"width": 1}}})")
          .find("width") != std::string::npos);
  CHECK(bad(R"({"version": "1", "styles": {"a": {"theme": "pink"}}})")
          .find("theme") != std::string::npos);
  auto ok = parse_chart_config(R"({"version": 7, "styles": {"a": {
    "kind": "stackedBar", "theme": "dark", "colors": ["#f00", "#00ff0080"],
    "yAxis": {"format": "number"}, "legend": true, "title": "T"}}})");
  REQUIRE(ok);
  CHECK(ok->version == "7");
  auto& a = ok->styles.at("a");
  CHECK(a.kind == chart_kind::stacked_bar);
  CHECK(a.theme == "dark");
  CHECK(a.colours.size() == 2);
  CHECK(a.colours[0].r == 1.0);
  CHECK(a.colours[1].g == 1.0);
  CHECK(a.colours[1].a == Approx(128 / 255.0));
  CHECK(a.y_format == chart_value_format::number);
  CHECK(a.background.r < 0.2); // the dark theme's background
}

TEST_CASE("Sentry's data shapes become series", "[charts]") {
  chart_style s;
  SECTION("a list of {seriesName, data: [{name, value}]}, ms timestamps") {
    auto data = nlohmann::json::parse(R"([
      {"seriesName": "a", "data": [{"name": 1700000060000, "value": 2},
                                   {"name": 1700000000000, "value": 1}]},
      {"seriesName": "b", "data": [{"name": 1700000000000, "value": 5}]}])");
    auto r = transform_chart_data(s, data);
    REQUIRE(r);
    REQUIRE(r->size() == 2);
    CHECK((*r)[0].name == "a");
    REQUIRE((*r)[0].points.size() == 2);
    CHECK((*r)[0].points[0].ts == 1700000000); // sorted, in seconds
    CHECK((*r)[0].points[1].value == 2);
  }
  SECTION("events-stats sums a bucket's counts") {
    auto data = nlohmann::json::parse(
      R"({"data": [[1700000000, [{"count": 3}, {"count": 4}]],
                   [1700000600, [{"count": 0}]]]})");
    auto r = transform_chart_data(s, data);
    REQUIRE(r);
    REQUIRE(r->size() == 1);
    CHECK((*r)[0].points[0].value == 7);
    CHECK((*r)[0].points[1].value == 0);
  }
  SECTION("{seriesName, stats} keeps the name") {
    auto data = nlohmann::json::parse(
      R"({"seriesName": "p95", "stats": {"data": [[1, [{"count": 1}]]]}})");
    auto r = transform_chart_data(s, data);
    REQUIRE(r);
    CHECK((*r)[0].name == "p95");
  }
  SECTION("top events keep the largest max_series by total") {
    s.max_series = 2;
    auto data = nlohmann::json::parse(R"({"stats": {
      "small": {"data": [[1, [{"count": 1}]]]},
      "big": {"data": [[1, [{"count": 9}]]]},
      "mid": {"data": [[1, [{"count": 5}]]]}}})");
    auto r = transform_chart_data(s, data);
    REQUIRE(r);
    REQUIRE(r->size() == 2);
    CHECK((*r)[0].name == "big");
    CHECK((*r)[1].name == "mid");
  }
  SECTION("previousPeriod splits one series in halves") {
    s.transform = chart_transform::previous_period;
    auto data = nlohmann::json::parse(
      R"({"data": [[10, [{"count": 1}]], [20, [{"count": 2}]],
                   [30, [{"count": 3}]], [40, [{"count": 4}]]]})");
    auto r = transform_chart_data(s, data);
    REQUIRE(r);
    REQUIRE(r->size() == 2);
    CHECK((*r)[0].name == "current");
    CHECK((*r)[0].points[0].ts == 30);
    CHECK((*r)[0].points[1].value == 4);
    CHECK((*r)[1].name == "previous");
    CHECK((*r)[1].points[0].ts == 30);
    CHECK((*r)[1].points[0].value == 1);
  }
  SECTION("other shapes are refused with the reason") {
    for (auto doc : {R"(42)", R"({"x": 1})", R"([{"data": [{"value": 1}]}])",
                     R"({"data": [["a", []]]})"}) {
      INFO(doc);
      auto r = transform_chart_data(s, nlohmann::json::parse(doc));
      CHECK(!r);
    }
  }
}

TEST_CASE("render requests need requestId, style and data", "[charts]") {
  nlohmann::json data;
  CHECK(!parse_render_request("{", data));
  CHECK(!parse_render_request("[]", data));
  CHECK(!parse_render_request(R"({"style": "s", "data": []})", data));
  CHECK(!parse_render_request(R"({"requestId": "r", "data": []})", data));
  CHECK(!parse_render_request(R"({"requestId": "r", "style": "s"})", data));
  auto r = parse_render_request(
    R"({"requestId": "r", "style": "s", "data": [], "width": 300})", data);
  REQUIRE(r);
  CHECK(!r->width); // a lone width is ignored
  r = parse_render_request(R"({"requestId": "r", "style": "s", "data": [],
                               "width": 300, "height": 100})",
                           data);
  REQUIRE(r);
  CHECK(*r->width == 300);
  CHECK(*r->height == 100);
  CHECK(!parse_render_request(R"({"requestId": "r", "style": "s",
                                  "data": [], "width": 3, "height": 100})",
                              data));
}

TEST_CASE("render_chart_body answers PNG, 400 or 503", "[charts]") {
  auto cfg = parse_chart_config(builtin_chart_config_json());
  REQUIRE(cfg);
  std::string body = R"({"requestId": "x", "style": "slack:discover.totalDaily",
    "data": {"seriesName": "count", "stats": {"data": [
      [1700000000, [{"count": 3}]], [1700086400, [{"count": 1500}]]]}}})";
  auto r = render_chart_body(&*cfg, body);
  REQUIRE(r.status == 200);
  CHECK(r.content_type == "image/png");
  CHECK(r.config_version == "vigil-builtin-1");
  REQUIRE(r.body.size() > 24);
  CHECK(std::memcmp(r.body.data(), "\x89PNG\r\n\x1a\n", 8) == 0);
  CHECK(be32(r.body, 16) == 450);
  CHECK(be32(r.body, 20) == 150);
  auto unknown = render_chart_body(
    &*cfg, R"({"requestId": "x", "style": "nope", "data": []})");
  CHECK(unknown.status == 400);
  CHECK(unknown.body.find("unknown style") != std::string::npos);
  CHECK(render_chart_body(&*cfg, "garbage").status == 400);
  CHECK(render_chart_body(nullptr, body).status == 503);
}
