#include "messages/chart_series.hpp"

#include <algorithm>
#include <cmath>

#include <nlohmann/json.hpp>

#include "messages/errors.hpp"

namespace vigil {

namespace {

using json = nlohmann::json;

caf::error bad(std::string text) {
  return caf::make_error(errc::malformed, std::move(text));
}

/// Sentry sends seconds in events-stats and milliseconds in `name`: a value
/// past the year 5138 in seconds must be milliseconds.
double to_seconds(double ts) {
  return ts > 1e11 ? ts / 1000 : ts;
}

bool is_events_stats(const json& j) {
  if (!j.is_object())
    return false;
  auto it = j.find("data");
  return it != j.end() && it->is_array()
         && (it->empty() || (*it)[0].is_array());
}

/// `{data: [[ts, [{count}, ...]], ...]}`: the counts of a bucket summed.
caf::expected<chart_series> from_events_stats(const json& j,
                                              std::string name) {
  chart_series s;
  s.name = std::move(name);
  for (auto& bucket : j["data"]) {
    if (!bucket.is_array() || bucket.size() < 2 || !bucket[0].is_number())
      return bad("data: a bucket must be [timestamp, [{count}]]");
    chart_point p;
    p.ts = to_seconds(bucket[0].get<double>());
    auto& counts = bucket[1];
    if (counts.is_array()) {
      for (auto& c : counts) {
        if (c.is_object()) {
          auto v = c.find("count");
          if (v != c.end() && v->is_number())
            p.value += v->get<double>();
        } else if (c.is_number())
          p.value += c.get<double>();
      }
    } else if (counts.is_number())
      p.value = counts.get<double>();
    s.points.push_back(p);
  }
  return s;
}

/// `[{seriesName, data: [{name: ts, value}]}]`.
caf::expected<std::vector<chart_series>> from_series_list(const json& j) {
  std::vector<chart_series> out;
  for (auto& item : j) {
    if (!item.is_object())
      return bad("data: each series must be an object");
    chart_series s;
    auto n = item.find("seriesName");
    if (n != item.end() && n->is_string())
      s.name = n->get<std::string>();
    auto d = item.find("data");
    if (d == item.end() || !d->is_array())
      return bad("data: a series needs data: [{name, value}]");
    for (auto& pt : *d) {
      if (!pt.is_object())
        return bad("data: a point must be {name, value}");
      auto name = pt.find("name");
      auto value = pt.find("value");
      if (name == pt.end() || value == pt.end() || !value->is_number())
        return bad("data: a point must be {name, value}");
      chart_point p;
      if (name->is_number())
        p.ts = to_seconds(name->get<double>());
      else
        return bad("data: a point's name must be a timestamp");
      p.value = value->get<double>();
      s.points.push_back(p);
    }
    out.push_back(std::move(s));
  }
  return out;
}

caf::expected<std::vector<chart_series>> recognise(const json& data) {
  if (data.is_array())
    return from_series_list(data);
  if (is_events_stats(data)) {
    auto s = from_events_stats(data, "count()");
    if (!s)
      return s.error();
    return std::vector<chart_series>{std::move(*s)};
  }
  if (data.is_object()) {
    auto stats = data.find("stats");
    if (stats != data.end()) {
      std::string name = "count()";
      if (auto n = data.find("seriesName"); n != data.end() && n->is_string())
        name = n->get<std::string>();
      if (is_events_stats(*stats)) {
        auto s = from_events_stats(*stats, name);
        if (!s)
          return s.error();
        return std::vector<chart_series>{std::move(*s)};
      }
      if (stats->is_object()) {
        // Top events: {stats: {name: events-stats, ...}}. A JSON object
        // has no order (ours reads it sorted by name); Sentry ranks the
        // entries with `order` (0 = the most events), which the legend
        // and the stacking follow, as Chartcuterie sorts by it.
        std::vector<std::pair<double, chart_series>> ranked;
        for (auto& [key, val] : stats->items()) {
          if (!is_events_stats(val))
            return bad("data.stats." + key + ": not events-stats");
          auto s = from_events_stats(val, key);
          if (!s)
            return s.error();
          double order = static_cast<double>(ranked.size()) + 1e9;
          if (auto o = val.find("order"); o != val.end() && o->is_number())
            order = o->get<double>();
          ranked.emplace_back(order, std::move(*s));
        }
        std::stable_sort(ranked.begin(), ranked.end(),
                         [](auto& a, auto& b) { return a.first < b.first; });
        std::vector<chart_series> out;
        for (auto& [order, s] : ranked)
          out.push_back(std::move(s));
        return out;
      }
    }
  }
  return bad("data has none of the shapes [{seriesName, data}], "
             "{data: [[ts, [{count}]]]}, {seriesName, stats} or "
             "{stats: {name: ...}}");
}

double total(const chart_series& s) {
  double sum = 0;
  for (auto& p : s.points)
    sum += p.value;
  return sum;
}

} // namespace

caf::expected<render_request> parse_render_request(std::string_view body,
                                                   json& data_out) {
  auto j = json::parse(body.begin(), body.end(), nullptr, false);
  if (j.is_discarded())
    return bad("the body is not valid JSON");
  if (!j.is_object())
    return bad("the body must be a JSON object");
  render_request r;
  auto id = j.find("requestId");
  if (id == j.end() || !id->is_string() || id->get_ref<std::string&>().empty())
    return bad("missing field requestId (a string)");
  r.request_id = id->get<std::string>();
  auto style = j.find("style");
  if (style == j.end() || !style->is_string())
    return bad("missing field style (a string)");
  r.style = style->get<std::string>();
  auto data = j.find("data");
  if (data == j.end() || data->is_null())
    return bad("missing field data");
  auto w = j.find("width");
  auto h = j.find("height");
  if (w != j.end() && h != j.end() && !w->is_null() && !h->is_null()) {
    if (!w->is_number() || !h->is_number())
      return bad("width and height must be numbers");
    auto wv = w->get<double>();
    auto hv = h->get<double>();
    if (!(wv >= 16 && wv <= 4000 && hv >= 16 && hv <= 4000))
      return bad("width and height must be between 16 and 4000");
    r.width = static_cast<int>(wv);
    r.height = static_cast<int>(hv);
  }
  data_out = std::move(*data);
  return r;
}

caf::expected<std::vector<chart_series>>
transform_chart_data(const chart_style& style, const json& data) {
  auto series = recognise(data);
  if (!series)
    return series;
  for (auto& s : *series) {
    std::stable_sort(s.points.begin(), s.points.end(),
                     [](auto& a, auto& b) { return a.ts < b.ts; });
    for (auto& p : s.points)
      if (!std::isfinite(p.value))
        p.value = 0;
  }
  if (style.transform == chart_transform::previous_period) {
    if (series->size() != 1)
      return bad("previousPeriod takes one series of two periods");
    auto& all = (*series)[0].points;
    auto half = all.size() / 2;
    chart_series current{"current", {all.begin() + static_cast<long>(half),
                                     all.end()}};
    chart_series previous{"previous", {}};
    // The previous period drawn at the current period's times.
    for (size_t i = 0; i < half && i < current.points.size(); ++i)
      previous.points.push_back({current.points[i].ts, all[i].value});
    return std::vector<chart_series>{std::move(current), std::move(previous)};
  }
  if (static_cast<int>(series->size()) > style.max_series) {
    std::stable_sort(series->begin(), series->end(),
                     [](auto& a, auto& b) { return total(a) > total(b); });
    series->resize(static_cast<size_t>(style.max_series));
  }
  return series;
}

} // namespace vigil
