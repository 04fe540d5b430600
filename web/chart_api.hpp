#pragma once

// PNG charts of the read API, drawn from the TSDB with the chart renderer's
// styles (web/chartcuterie's, rendered in the read API's thread):
// - `GET /api/0/issues/{id}/chart.png?period=24h`: the issue's events
//   (TSDB model 4), style `vigil:issue.eventsOverTime`;
// - `GET /api/0/projects/{org}/{project}/chart.png?stat=received&period=7d`:
//   the project's series of `stat` (as the project stats endpoint),
//   style `vigil:project.received`.
// Both take `period` (Sentry's statsPeriod: 30m, 24h, 7d, 2w; at most
// 90d), `environment`, and `width` with `height` (both, 100 to 2000) to
// override the style's size. See docs/CHARTS.md, "Charts in the API".

#include <cstdint>
#include <string_view>

#include "adapters/http.hpp"
#include "config/organizations.hpp"
#include "web/read_sources.hpp"

namespace vigil {

/// The chart of issue `id` (the path segment, checked here).
http_response issue_chart(read_sources& src, const quota_catalog& catalog,
                          std::string_view id, std::string_view query);

/// The chart of project `project_id` of organization `org_id`.
http_response project_chart(read_sources& src, uint64_t org_id,
                            uint64_t project_id, std::string_view query);

/// `POST /api/0/charts/`: renders `body`'s chart into the filestore;
/// `url_prefix` (system.url-prefix) begins the URL it answers.
http_response create_chart(read_sources& src, std::string_view body,
                           std::string_view url_prefix);

/// `GET /charts/{name}`: a generated chart's PNG; 404 for any other name.
http_response chart_file(read_sources& src, std::string_view name);

} // namespace vigil
