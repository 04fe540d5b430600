#include "bench/bench_charts_data.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "messages/json_writer.hpp"

namespace vigil {

namespace {

using json = nlohmann::json;

/// splitmix64: small, fast, and the same sequence on every platform.
struct bench_rng {
  uint64_t state;
  uint64_t next() {
    uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  /// In [lo, hi].
  uint64_t between(uint64_t lo, uint64_t hi) {
    return lo + next() % (hi - lo + 1);
  }
  /// In [0, 1).
  double unit() { return static_cast<double>(next() >> 11) * 0x1p-53; }
};

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ULL;
  for (auto c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ULL;
  }
  return h;
}

/// 2026-12-04 00:00 UTC: the generated series end there.
constexpr double end_ts = 1796342400;

/// Names a top-N chart's series could have (transactions, issues).
const char* const series_names[] = {
  "/api/0/organizations/{organization_slug}/issues/",
  "TypeError: Cannot read properties of undefined (reading 'map')",
  "POST /api/store/",
  "ConnectionResetError",
  "celery.tasks.process_event",
  "GET /checkout",
  "KeyError: 'user'",
  "sentry.tasks.post_process.post_process_group",
};

/// `n` counts with a daily (hourly buckets) or weekly (daily buckets)
/// rhythm, noise and now and then a spike, scaled to `peak`.
std::vector<double> counts(bench_rng& rng, size_t n, double step,
                           double peak) {
  std::vector<double> out(n);
  const double period = step >= 86400 ? 7 : 86400 / step;
  const double phase = rng.unit() * 6.283;
  for (size_t i = 0; i < n; ++i) {
    double rhythm = 0.65 + 0.35 * std::sin(6.283 * static_cast<double>(i)
                                             / period + phase);
    double noise = 0.75 + 0.5 * rng.unit();
    double v = peak * 0.7 * rhythm * noise;
    if (rng.unit() < 0.04)
      v = peak;
    out[i] = std::round(v);
  }
  return out;
}

json events_stats(const std::vector<double>& values, double start,
                  double step) {
  json data = json::array();
  for (size_t i = 0; i < values.size(); ++i)
    data.push_back(json::array(
      {start + static_cast<double>(i) * step,
       json::array({json{{"count", values[i]}}})}));
  return json{{"data", std::move(data)}};
}

json series_list_item(const std::string& name,
                      const std::vector<double>& values, double start,
                      double step) {
  json data = json::array();
  for (size_t i = 0; i < values.size(); ++i)
    data.push_back(json{
      {"name", (start + static_cast<double>(i) * step) * 1000},
      {"value", values[i]}});
  return json{{"seriesName", name}, {"data", std::move(data)}};
}

json generate(const chart_style& style, bench_rng& rng, size_t variant) {
  const bool bars = style.kind == chart_kind::bar
                    || style.kind == chart_kind::stacked_bar;
  const double step = bars ? 86400 : 3600;
  size_t n = rng.between(24, 90);
  // A peak of 10 to 90k: labels from plain counts to "k".
  double peak = static_cast<double>(rng.between(1, 9))
                * std::pow(10.0, static_cast<double>(rng.between(1, 4)));
  if (style.transform == chart_transform::previous_period) {
    // Two periods in one series: the older half is drawn as "previous".
    auto values = counts(rng, 2 * n, step, peak);
    double start = end_ts - static_cast<double>(2 * n) * step;
    return json{{"seriesName", "count()"},
                {"stats", events_stats(values, start, step)}};
  }
  double start = end_ts - static_cast<double>(n) * step;
  if (style.legend && style.max_series > 1) {
    // Top N: Sentry's series list, the largest first.
    auto k = rng.between(1, std::min<uint64_t>(5, static_cast<uint64_t>(
                                                    style.max_series)));
    // Every other body as top events, {stats: {name: events-stats with
    // its rank in `order`}}, which is what Sentry sends these styles.
    const bool top_events = variant % 2 == 1;
    json list = json::array();
    json stats = json::object();
    auto first = rng.between(0, std::size(series_names) - 1);
    for (uint64_t j = 0; j < k; ++j) {
      auto values = counts(rng, n, step,
                           peak / std::pow(static_cast<double>(j + 1), 1.2));
      std::string name = series_names[(first + j) % std::size(series_names)];
      if (top_events) {
        auto e = events_stats(values, start, step);
        e["order"] = j;
        stats[name] = std::move(e);
      } else {
        list.push_back(series_list_item(name, values, start, step));
      }
    }
    if (top_events)
      return json{{"stats", std::move(stats)}};
    return list;
  }
  auto values = counts(rng, n, step, peak);
  switch (variant % 3) {
    case 0:
      return json{{"seriesName", "count()"},
                  {"stats", events_stats(values, start, step)}};
    case 1:
      return events_stats(values, start, step);
    default:
      return json::array({series_list_item("count()", values, start, step)});
  }
}

std::string hex(const chart_colour& c) {
  auto byte = [](double v) {
    return static_cast<unsigned>(std::lround(std::clamp(v, 0.0, 1.0) * 255));
  };
  char buf[16];
  if (c.a < 1)
    std::snprintf(buf, sizeof buf, "#%02x%02x%02x%02x", byte(c.r), byte(c.g),
                  byte(c.b), byte(c.a));
  else
    std::snprintf(buf, sizeof buf, "#%02x%02x%02x", byte(c.r), byte(c.g),
                  byte(c.b));
  return buf;
}

} // namespace

std::vector<chart_bench_style> chart_bench_bodies(const chart_config& cfg,
                                                  size_t variants,
                                                  uint64_t seed) {
  std::vector<chart_bench_style> out;
  for (auto& [name, style] : cfg.styles) {
    chart_bench_style s;
    s.style = name;
    for (size_t v = 0; v < variants; ++v) {
      bench_rng rng{seed ^ fnv1a(name) ^ (v * 0x2545f4914f6cdd1dULL)};
      json body{{"requestId", "bench-" + std::to_string(v)},
                {"style", name},
                {"data", generate(style, rng, v)}};
      s.bodies.push_back(dump_json(body));
    }
    out.push_back(std::move(s));
  }
  return out;
}

std::string chart_style_json(const chart_style& s) {
  const char* kinds[] = {"line", "area", "bar", "stackedBar"};
  json colours = json::array();
  for (auto& c : s.colours)
    colours.push_back(hex(c));
  json j{
    {"kind", kinds[static_cast<int>(s.kind)]},
    {"width", s.width},
    {"height", s.height},
    {"colors", colours},
    {"background", hex(s.background)},
    {"textColor", hex(s.text)},
    {"gridColor", hex(s.grid_colour)},
    {"axisColor", hex(s.axis_colour)},
    {"title", s.title},
    {"legend", s.legend},
    {"grid", s.grid},
    {"xAxis", s.x_axis},
    {"yAxis", json{{"show", s.y_axis},
                   {"format", s.y_format == chart_value_format::count
                                ? "count"
                                : "number"}}},
    {"transform", s.transform == chart_transform::previous_period
                    ? "previousPeriod"
                    : "auto"},
    {"maxSeries", s.max_series},
    {"lineWidth", s.line_width},
    {"fillOpacity", s.fill_opacity},
    {"fontSize", s.font_size},
  };
  return dump_json(j);
}

} // namespace vigil
