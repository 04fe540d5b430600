#pragma once

// The stats endpoints of the read API, read from the TSDB:
// - `GET /api/0/projects/{org}/{project}/stats/` as Sentry's
//   ProjectStatsEndpoint: `stat` received (default) | rejected |
//   blacklisted | generated, since/until/resolution (web/stats_query),
//   answering `[[timestamp, count], ...]`;
// - `GET /api/0/organizations/{org}/stats/`: without `stat`, the
//   organization's quantities per data category and outcome (accepted,
//   rate_limited, filtered) over the range, in stats_v2's shape; with
//   `stat`, Sentry's v1 OrganizationStatsEndpoint series (`group`
//   organization or project). See docs/INGEST.md, "Read API".

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "adapters/http.hpp"
#include "config/organizations.hpp"
#include "web/read_sources.hpp"

namespace vigil {

/// The project stats endpoint's answer for project `project_id` of
/// organization `org_id`; with `environment`, the counts of that
/// environment (Sentry writes only the project's own events, stat
/// "generated", per environment).
http_response project_stats(read_sources& src, uint64_t org_id,
                            uint64_t project_id, std::string_view query);

/// The TSDB model of a stat name, Sentry's per family: project
/// (100/101/104), organization (200/201/202) or, for "generated" (projects
/// only), the project model; nullopt for an unknown name.
std::optional<tsdb_model> stat_model(std::string_view stat, bool organization);

/// The organization stats endpoint's answer for organization `org_id`
/// (its projects from `catalog`).
http_response organization_stats(read_sources& src,
                                 const quota_catalog& catalog,
                                 uint64_t org_id, std::string_view query);

/// The data categories the organization stats count (Relay's names, as
/// ingestion records them in organization_outcomes).
const std::vector<std::string_view>& outcome_categories();

/// The outcomes the organization stats count: accepted, rate_limited,
/// filtered.
const std::vector<std::string_view>& outcome_names();

} // namespace vigil
