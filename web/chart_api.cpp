#include "web/chart_api.hpp"

#include <charconv>
#include <cmath>

#include <nlohmann/json.hpp>

#include "actors/chart_config_loader.hpp"
#include "actors/chart_generator.hpp"
#include "actors/chart_renderer.hpp"
#include "messages/errors.hpp"
#include "messages/json_writer.hpp"
#include "messages/text_excerpt.hpp"
#include "web/api_json.hpp"
#include "web/issues_api.hpp"
#include "web/stats_api.hpp"
#include "web/stats_query.hpp"

namespace vigil {

namespace {

/// The longest period a chart covers (the TSDB's daily rollup keeps 90).
constexpr int64_t max_chart_period = 90 * 86400;

/// Points a chart shows at most: past it, the next coarser rollup.
constexpr int64_t max_chart_points = 400;

/// The request's `period` in seconds (default `fallback`), or the 400.
caf::expected<int64_t> read_period(std::string_view query,
                                   int64_t fallback) {
  auto text = query_value(query, "period");
  if (!text || text->empty())
    return fallback;
  auto seconds = parse_stats_period(*text);
  if (!seconds || *seconds > max_chart_period)
    return caf::make_error(errc::malformed,
                           "Invalid period: " + excerpt(*text, 50)
                             + " (expected a stats period of at most 90d, "
                               "as 30m, 24h, 7d or 2w)");
  return *seconds;
}

/// `width` and `height`, both or neither, into the render body.
caf::error read_size(std::string_view query, nlohmann::json& body) {
  auto w = query_value(query, "width");
  auto h = query_value(query, "height");
  if (!w && !h)
    return {};
  if (!w || !h)
    return caf::make_error(errc::malformed,
                           "width and height go together: give both or "
                           "neither");
  for (auto [name, text] : {std::pair{"width", *w}, std::pair{"height", *h}}) {
    int value = 0;
    auto res = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || res.ec != std::errc{}
        || res.ptr != text.data() + text.size() || value < 100
        || value > 2000)
      return caf::make_error(errc::malformed,
                             std::string{name} + " must be a number of "
                                                 "pixels from 100 to 2000");
    body[name] = value;
  }
  return {};
}

/// Renders `series` with `style` into the answer: the PNG, or the
/// renderer's reason.
http_response render(const std::string& style, const std::string& name,
                     const std::vector<tsdb_point>& series,
                     nlohmann::json body) {
  auto data = nlohmann::json::array();
  for (const auto& [ts, n] : series)
    data.push_back({ts, {{{"count", n}}}});
  body["requestId"] = "api";
  body["style"] = style;
  body["data"] = {{"seriesName", name}, {"data", std::move(data)}};
  auto cfg = builtin_chart_config();
  auto reply = render_chart_body(cfg.get(), dump_json(body));
  http_response r;
  r.status = reply.status;
  r.content_type = reply.content_type;
  r.body = std::move(reply.body);
  if (r.status == 200)
    r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

/// The shared part of both charts: period, size and the TSDB's series.
http_response chart(read_sources& src, tsdb_model model, tsdb_key key,
                    std::optional<int64_t> environment_id,
                    std::string_view query, int64_t default_period,
                    const std::string& style, const std::string& name) {
  auto period = read_period(query, default_period);
  if (!period)
    return json_error(400, error_text(period.error()));
  nlohmann::json body = nlohmann::json::object();
  if (auto err = read_size(query, body))
    return json_error(400, error_text(err));
  if (src.rollups().empty())
    return unavailable("the chart's range",
                       caf::make_error(errc::bad_config,
                                       "tsdb.rollups is empty"));
  auto range = tsdb_chart_range(src.rollups(), *period,
                                static_cast<int64_t>(std::floor(src.now())),
                                max_chart_points);
  range.environment_id = environment_id;
  tsdb_query q;
  q.kind = tsdb_query_kind::range;
  q.model = model;
  q.keys = {std::move(key)};
  q.range = range;
  auto a = src.ask_tsdb(q);
  if (a && a->series.size() != 1)
    return unavailable("the TSDB",
                       caf::make_error(errc::malformed,
                                       "an answer of another size"));
  if (!a)
    return unavailable("the TSDB", a.error());
  return render(style, name, a->series[0], std::move(body));
}

} // namespace

http_response issue_chart(read_sources& src, const quota_catalog& catalog,
                          std::string_view id, std::string_view query) {
  auto issue = find_issue(src, catalog, id);
  if (issue.error)
    return std::move(*issue.error);
  auto env = read_environment_arg(src, issue.project->organization, query);
  if (env.error)
    return std::move(*env.error);
  return chart(src, tsdb_model::group, tsdb_key::of(issue.group->id), env.id,
               query, 86400, "vigil:issue.eventsOverTime", "events");
}

http_response project_chart(read_sources& src, uint64_t org_id,
                            uint64_t project_id, std::string_view query) {
  auto stat = query_value(query, "stat").value_or("received");
  auto model = stat_model(stat, false);
  if (!model)
    return json_error(400, "Invalid stat: " + excerpt(stat, 100)
                             + " (expected received, rejected, blacklisted "
                               "or generated)");
  auto env = read_environment_arg(src, org_id, query);
  if (env.error)
    return std::move(*env.error);
  return chart(src, *model, tsdb_key::of(static_cast<int64_t>(project_id)),
               env.id, query, 7 * 86400, "vigil:project.received", stat);
}

http_response create_chart(read_sources& src, std::string_view body,
                           std::string_view url_prefix) {
  auto doc = nlohmann::json::parse(body, nullptr, false);
  if (doc.is_discarded() || !doc.is_object())
    return json_error(400, "the body must be a JSON object {style, data, "
                           "width?, height?}");
  auto style = doc.find("style");
  if (style == doc.end() || !style->is_string())
    return json_error(400, "style: a string is required (a style of the "
                           "chart configuration, e.g. "
                           "vigil:issue.eventsOverTime)");
  auto data = doc.find("data");
  if (data == doc.end())
    return json_error(400, "data: required (the series to draw)");
  std::optional<int> width, height;
  auto w = doc.find("width");
  auto h = doc.find("height");
  if (w != doc.end() && h != doc.end()) {
    if (!w->is_number_integer() || !h->is_number_integer())
      return json_error(400, "width and height must be whole numbers");
    width = w->get<int>();
    height = h->get<int>();
  }
  auto* files = src.files();
  if (files == nullptr)
    return json_error(503, "this node has no filestore");
  auto cfg = builtin_chart_config();
  auto made = generate_chart(cfg.get(), *files, url_prefix,
                             style->get<std::string>(), *data, width, height);
  if (!made) {
    if (made.error() == errc::malformed)
      return json_error(400, error_text(made.error()));
    return unavailable("storing the chart", made.error());
  }
  auto resp = json_answer({{"requestId", made->request_id},
                           {"url", made->url}});
  resp.status = 201;
  return resp;
}

http_response chart_file(read_sources& src, std::string_view name) {
  if (!is_chart_file_name(name))
    return json_error(404, "no chart " + excerpt(name, 100));
  auto* files = src.files();
  if (files == nullptr)
    return json_error(503, "this node has no filestore");
  auto bytes = files->get(chart_file_key(name.substr(0, 32)));
  if (!bytes) {
    if (bytes.error() == errc::not_found)
      return json_error(404, "no chart " + std::string{name});
    return unavailable("reading the chart", bytes.error());
  }
  http_response r;
  r.content_type = "image/png";
  r.body = std::move(*bytes);
  // The name never names other bytes: caches may keep it.
  r.headers.emplace_back("Cache-Control", "public, max-age=86400, immutable");
  return r;
}

} // namespace vigil
